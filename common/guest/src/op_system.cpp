// nic-names, serial-console, hardware-services (see system_ops.h).
#include <fmt/core.h>

#include <algorithm>

#include "op_util.h"
#include "utsushi/guest/network_config.h"
#include "utsushi/guest/system_ops.h"

namespace utsushi::guest {

std::string pin_link_path(std::string_view name) {
  return fmt::format("/etc/systemd/network/05-utsushi-{}.link", name);
}

std::vector<std::string> HardwareServicesParams::default_hardware_units() {
  return {
      // IPMI: no BMC in a VM
      "ipmievd.service", "openipmi.service", "ipmi.service",
      // HPE health and management agents
      "hp-health.service", "hp-ams.service", "amsd.service", "smad.service", "hp-snmp-agents.service",
      "hpsmhd.service", "hp-asrd.service",
      // Dell OpenManage
      "dsm_sa_datamgrd.service", "dsm_sa_eventmgrd.service", "dsm_sa_snmpd.service", "dsm_om_connsvc.service",
      "dataeng.service", "instsvcdrv.service",
      // LSI/Broadcom RAID management
      "lsi_mrdsnmpd.service", "vivaldiframeworkd.service",
      // disk health and sensors of the physical machine
      "smartd.service", "smartmontools.service", "lm-sensors.service", "sensord.service", "thermald.service",
      "nvidia-persistenced.service",
  };
}

namespace {

constexpr const char* k_udev_pin_file = "/etc/udev/rules.d/70-utsushi-net-names.rules";

class NicNames final : public Operation {
 public:
  explicit NicNames(NicNamesParams params) : m_params(std::move(params)) {
    for (NicBinding& b : m_params.nics) {
      (void)normalise_mac(b.mac);
    }
  }
  std::string_view name() const override { return "nic-names"; }
  std::string_view description() const override {
    return "Keep configuration bound to NIC names working: pin each old name to the new NIC's MAC, or rebind it "
           "to the new name";
  }
  Applicability applies(const GuestOs& os) const override {
    if (os.network.empty() && m_params.nics.empty()) {
      return {false, "no network configuration bound to NIC names and no NIC given"};
    }
    return {};
  }

  Result<void> run(Target& t) const override {
    for (const NicBinding& b : m_params.nics) {
      if (b.new_name.empty()) {
        UTSUSHI_TRY(pin(t, b));
      } else {
        UTSUSHI_TRY(rebind_configs(t, b));
      }
    }
    for (const NetworkConfig& c : t.os().network) {
      for (const std::string& n : c.interfaces) {
        bool bound = std::any_of(m_params.nics.begin(), m_params.nics.end(), [&](const NicBinding& b) {
          return b.name == n || b.new_name == n;
        });
        if (!bound) {
          t.note(c.path, fmt::format("{} configures interface {}, which no NIC of the new machine will carry",
                                     network_system_name(c.system), n));
        }
      }
    }
    return {};
  }

 private:
  static Result<void> pin(Target& t, const NicBinding& b) {
    std::string why = fmt::format("the NIC with MAC {} keeps the name {}", b.mac, b.name);
    if (t.os().link_files) {
      UTSUSHI_TRY(t.write(pin_link_path(b.name), pin_link_file(b.name, b.mac), why));
    } else {
      std::string rules = UTSUSHI_TRY(t.read(k_udev_pin_file)).value_or("# Written by utsushi: NIC names kept by MAC.\n");
      std::string rule = pin_udev_rule(b.name, b.mac);
      if (rules.find(rule) == std::string::npos) {
        UTSUSHI_TRY(t.write(k_udev_pin_file, rules + rule + "\n", why));
      }
    }
    for (const NetworkConfig& c : t.os().network) {
      UTSUSHI_TRY(detail::edit_file(t, c.path, [&](const std::string& s) {
        Edited out;
        out.text = drop_hardware_matches(c.system, s, b.name, b.mac);
        if (out.text != s) {
          out.edits.push_back("matches on the old NIC's driver or bus path dropped for " + b.name);
        }
        return out;
      }));
    }
    return {};
  }

  static Result<void> rebind_configs(Target& t, const NicBinding& b) {
    for (const NetworkConfig& c : t.os().network) {
      if (std::find(c.interfaces.begin(), c.interfaces.end(), b.name) == c.interfaces.end()) {
        continue;
      }
      UTSUSHI_TRY(detail::edit_file(t, c.path, [&](const std::string& s) {
        Edited out;
        out.text = rebind(c.system, s, b.name, b.new_name);
        if (out.text != s) {
          out.edits.push_back(fmt::format("interface {} -> {}", b.name, b.new_name));
        }
        return out;
      }));
    }
    UTSUSHI_TRY(t.remove(pin_link_path(b.name), "a pin of the old name " + b.name + " (now " + b.new_name + ")"));
    return {};
  }

  NicNamesParams m_params;
};

class SerialConsole final : public Operation {
 public:
  explicit SerialConsole(SerialConsoleParams params) : m_params(std::move(params)) {}
  std::string_view name() const override { return "serial-console"; }
  std::string_view description() const override {
    return "A login prompt on the serial console (virsh console), root allowed there";
  }
  Applicability applies(const GuestOs&) const override { return {}; }

  Result<void> run(Target& t) const override {
    Session& s = t.session();
    if (t.os().systemd) {
      std::string unit;
      for (const char* dir : {"/lib/systemd/system", "/usr/lib/systemd/system"}) {
        if (UTSUSHI_TRY(s.exists(std::string(dir) + "/serial-getty@.service"))) {
          unit = std::string(dir) + "/serial-getty@.service";
          break;
        }
      }
      if (unit.empty()) {
        t.note("serial-getty@.service", "systemd without serial-getty@.service: no getty on " + m_params.tty);
      } else {
        UTSUSHI_TRY(t.symlink(unit, "/etc/systemd/system/getty.target.wants/serial-getty@" + m_params.tty + ".service",
                              "a getty on " + m_params.tty));
      }
    } else if (auto inittab = UTSUSHI_TRY(t.read("/etc/inittab"))) {
      if (inittab->find(m_params.tty) == std::string::npos) {
        std::string line = fmt::format("S0:2345:respawn:/sbin/getty -L {} {} vt100\n", m_params.tty, m_params.speed);
        std::string text = *inittab + (inittab->empty() || inittab->back() == '\n' ? "" : "\n") + line;
        UTSUSHI_TRY(t.write("/etc/inittab", text, "a getty on " + m_params.tty));
      }
    }
    if (auto securetty = UTSUSHI_TRY(t.read("/etc/securetty"))) {
      if (securetty->find(m_params.tty) == std::string::npos) {
        std::string text = *securetty + (securetty->empty() || securetty->back() == '\n' ? "" : "\n") + m_params.tty + "\n";
        UTSUSHI_TRY(t.write("/etc/securetty", text, "root may log in on " + m_params.tty));
      }
    }
    return {};
  }

 private:
  SerialConsoleParams m_params;
};

class HardwareServices final : public Operation {
 public:
  explicit HardwareServices(HardwareServicesParams params) : m_params(std::move(params)) {}
  std::string_view name() const override { return "hardware-services"; }
  std::string_view description() const override {
    return "Disable services tied to the old hardware (IPMI, vendor health and RAID agents, sensors), which would "
           "fail or stall boot";
  }
  Applicability applies(const GuestOs& os) const override {
    if (!os.systemd) {
      return {false, "not a systemd guest"};
    }
    return {};
  }

  Result<void> run(Target& t) const override {
    for (const std::string& unit : m_params.units) {
      bool disabled = false;
      for (const std::string& link : UTSUSHI_TRY(t.session().glob("/etc/systemd/system/*.wants/" + unit))) {
        disabled = UTSUSHI_TRY(t.remove(link, "enables " + unit + ", tied to the physical hardware")) || disabled;
      }
      if (disabled) {
        t.service(unit, "disabled: tied to the physical hardware");
      }
    }
    return {};
  }

 private:
  HardwareServicesParams m_params;
};

}  // namespace

std::unique_ptr<Operation> make_nic_names_op(NicNamesParams params) {
  return std::make_unique<NicNames>(std::move(params));
}

std::unique_ptr<Operation> make_serial_console_op(SerialConsoleParams params) {
  return std::make_unique<SerialConsole>(std::move(params));
}

std::unique_ptr<Operation> make_hardware_services_op(HardwareServicesParams params) {
  return std::make_unique<HardwareServices>(std::move(params));
}

}  // namespace utsushi::guest
