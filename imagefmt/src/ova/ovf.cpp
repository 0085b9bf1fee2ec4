// The OVF descriptor, written and read with pugixml (see ova_format.h).
#include <pugixml.hpp>

#include <charconv>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <utility>

#include "utsushi/imagefmt/ova_format.h"

namespace utsushi::imagefmt::ova {
namespace {

constexpr const char* k_ns_ovf = "http://schemas.dmtf.org/ovf/envelope/1";
constexpr const char* k_ns_rasd = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
constexpr const char* k_ns_vssd = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";
constexpr const char* k_ns_vmw = "http://www.vmware.com/schema/ovf";
constexpr const char* k_stream_optimized =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
// CIM ResourceType values (DSP0243 Table 4 / CIM_ResourceAllocationSettingData).
constexpr const char* k_rt_processor = "3";
constexpr const char* k_rt_memory = "4";
constexpr const char* k_rt_scsi = "6";
constexpr const char* k_rt_disk = "17";

using Fields = std::initializer_list<std::pair<const char*, std::string>>;

void add_text(pugi::xml_node parent, const char* name, const std::string& text) {
  parent.append_child(name).text().set(text.c_str());
}

void add_attributes(pugi::xml_node node, Fields attributes) {
  for (const auto& [name, value] : attributes) {
    node.append_attribute(name).set_value(value.c_str());
  }
}

// A VirtualHardwareSection Item: rasd: elements in the order given.
void add_item(pugi::xml_node section, Fields fields) {
  pugi::xml_node item = section.append_child("Item");
  for (const auto& [name, value] : fields) {
    add_text(item, (std::string("rasd:") + name).c_str(), value);
  }
}

void add_hardware(pugi::xml_node system, const OvfSettings& s) {
  pugi::xml_node hw = system.append_child("VirtualHardwareSection");
  add_text(hw, "Info", "Virtual hardware requirements");
  pugi::xml_node sys = hw.append_child("System");
  add_text(sys, "vssd:ElementName", "Virtual Hardware Family");
  add_text(sys, "vssd:InstanceID", "0");
  add_text(sys, "vssd:VirtualSystemIdentifier", s.name);
  add_text(sys, "vssd:VirtualSystemType", "vmx-15");
  const std::string cpus = std::to_string(s.cpus);
  const std::string mib = std::to_string(s.memory_mib);
  add_item(hw, {{"AllocationUnits", "hertz * 10^6"},
                {"ElementName", cpus + " virtual CPU(s)"},
                {"InstanceID", "1"},
                {"ResourceType", k_rt_processor},
                {"VirtualQuantity", cpus}});
  add_item(hw, {{"AllocationUnits", "byte * 2^20"},
                {"ElementName", mib + " MB of memory"},
                {"InstanceID", "2"},
                {"ResourceType", k_rt_memory},
                {"VirtualQuantity", mib}});
  add_item(hw, {{"Address", "0"},
                {"ElementName", "SCSI Controller 0"},
                {"InstanceID", "3"},
                {"ResourceSubType", "lsilogic"},
                {"ResourceType", k_rt_scsi}});
  add_item(hw, {{"AddressOnParent", "0"},
                {"ElementName", "Hard Disk 1"},
                {"HostResource", "ovf:/disk/vmdisk1"},
                {"InstanceID", "5"},
                {"Parent", "3"},
                {"ResourceType", k_rt_disk}});
}

// --- Reading -------------------------------------------------------------------

std::string_view local_name(const char* qualified) {
  std::string_view n(qualified);
  auto colon = n.find(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

pugi::xml_node child_named(pugi::xml_node parent, std::string_view local) {
  for (pugi::xml_node c : parent.children()) {
    if (c.type() == pugi::node_element && local_name(c.name()) == local) {
      return c;
    }
  }
  return {};
}

pugi::xml_attribute attribute_named(pugi::xml_node node, std::string_view local) {
  for (pugi::xml_attribute a : node.attributes()) {
    if (local_name(a.name()) == local) {
      return a;
    }
  }
  return {};
}

std::unexpected<Error> corrupt(const std::string& what) { return fail(Errc::corruption, "ovf: " + what); }

}  // namespace

std::string write_ovf(const OvfSettings& s) {
  pugi::xml_document doc;
  pugi::xml_node decl = doc.append_child(pugi::node_declaration);
  add_attributes(decl, {{"version", "1.0"}, {"encoding", "UTF-8"}});
  pugi::xml_node env = doc.append_child("Envelope");
  add_attributes(env, {{"xmlns", k_ns_ovf},
                       {"xmlns:ovf", k_ns_ovf},
                       {"xmlns:rasd", k_ns_rasd},
                       {"xmlns:vssd", k_ns_vssd},
                       {"xmlns:vmw", k_ns_vmw}});
  add_attributes(env.append_child("References").append_child("File"),
                 {{"ovf:href", s.disk_file}, {"ovf:id", "file1"}, {"ovf:size", std::to_string(s.disk_file_size)}});
  pugi::xml_node disks = env.append_child("DiskSection");
  add_text(disks, "Info", "Virtual disk information");
  add_attributes(disks.append_child("Disk"), {{"ovf:capacity", std::to_string(s.capacity)},
                                              {"ovf:capacityAllocationUnits", "byte"},
                                              {"ovf:diskId", "vmdisk1"},
                                              {"ovf:fileRef", "file1"},
                                              {"ovf:format", k_stream_optimized}});
  add_text(env.append_child("NetworkSection"), "Info", "The list of logical networks");
  pugi::xml_node system = env.append_child("VirtualSystem");
  add_attributes(system, {{"ovf:id", s.name}});
  add_text(system, "Info", "A virtual machine");
  add_text(system, "Name", s.name);
  pugi::xml_node os = system.append_child("OperatingSystemSection");
  add_attributes(os, {{"ovf:id", "100"}, {"vmw:osType", "other26xLinux64Guest"}});
  add_text(os, "Info", "The guest operating system");
  add_hardware(system, s);
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default, pugi::encoding_utf8);
  return out.str();
}

Result<OvfDisk> read_ovf_disk(std::string_view text) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed = doc.load_buffer(text.data(), text.size(), pugi::parse_default);
  if (!parsed) {
    return corrupt(std::string("not well-formed XML at byte ") + std::to_string(parsed.offset) + ": " +
                   parsed.description());
  }
  pugi::xml_node env = doc.document_element();
  if (local_name(env.name()) != "Envelope") {
    return corrupt("the root element is '" + std::string(env.name()) + "', not Envelope");
  }
  pugi::xml_node disk = child_named(child_named(env, "DiskSection"), "Disk");
  if (!disk) {
    return corrupt("the descriptor declares no disk (DiskSection/Disk)");
  }
  std::string_view ref = attribute_named(disk, "fileRef").as_string();
  if (ref.empty()) {
    return corrupt("the first disk names no file (ovf:fileRef)");
  }
  pugi::xml_node file;
  for (pugi::xml_node f : child_named(env, "References").children()) {
    if (f.type() == pugi::node_element && local_name(f.name()) == "File" &&
        attribute_named(f, "id").as_string() == ref) {
      file = f;
      break;
    }
  }
  if (!file) {
    return corrupt("the disk's file '" + std::string(ref) + "' is not in References");
  }
  OvfDisk out;
  out.file = attribute_named(file, "href").as_string();
  out.format = attribute_named(disk, "format").as_string();
  if (out.file.empty()) {
    return corrupt("File '" + std::string(ref) + "' has no ovf:href");
  }
  std::string_view compression = attribute_named(file, "compression").as_string();
  if (!compression.empty() && compression != "identity") {
    return fail(Errc::not_supported, "ovf: disk file '" + out.file + "' is compressed (" + std::string(compression) +
                                         "); only uncompressed members are read");
  }
  if (attribute_named(file, "chunkSize")) {
    return fail(Errc::not_supported, "ovf: disk file '" + out.file + "' is split into chunks (ovf:chunkSize)");
  }
  if (pugi::xml_attribute size = attribute_named(file, "size")) {
    std::string_view v = size.as_string();
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size()) {
      return corrupt("File '" + std::string(ref) + "' has an invalid ovf:size '" + std::string(v) + "'");
    }
    out.size = n;
  }
  return out;
}

}  // namespace utsushi::imagefmt::ova
