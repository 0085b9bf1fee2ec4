#pragma once
// Shared by the identity operations (private to the guest library): the
// operation factories of each identity_*.cpp, and the few guest actions the
// Target does not cover (modes, trees removed unread, secrets written
// without their contents in the report).
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/guest/identity_ops.h"
#include "utsushi/guest/operation.h"

namespace utsushi::guest::identity {

// The operations, one factory each (identity_*.cpp), in table order.
std::unique_ptr<Operation> make_machine_id(const IdentityParams& p);
std::unique_ptr<Operation> make_hostname(const IdentityParams& p);
std::unique_ptr<Operation> make_ssh_hostkeys(const IdentityParams& p);
std::unique_ptr<Operation> make_random_seed(const IdentityParams& p);
std::unique_ptr<Operation> make_udev_persistent_net(const IdentityParams& p);
std::unique_ptr<Operation> make_net_hwaddr(const IdentityParams& p);
std::unique_ptr<Operation> make_net_address(const IdentityParams& p);
std::unique_ptr<Operation> make_nm_connection_uuids(const IdentityParams& p);
std::unique_ptr<Operation> make_dhcp_client_state(const IdentityParams& p);
std::unique_ptr<Operation> make_cloud_init_state(const IdentityParams& p);
std::unique_ptr<Operation> make_logfiles(const IdentityParams& p);
std::unique_ptr<Operation> make_shell_history(const IdentityParams& p);
std::unique_ptr<Operation> make_tmp_files(const IdentityParams& p);
std::unique_ptr<Operation> make_authorized_keys(const IdentityParams& p);
std::unique_ptr<Operation> make_root_password(const IdentityParams& p);
std::unique_ptr<Operation> make_firstboot(const IdentityParams& p);
std::unique_ptr<Operation> make_run_scripts(const IdentityParams& p);

// An operation defined by its name, description and body (most identity
// operations are one function of the parameters).
template <class Body>
class SimpleOperation final : public Operation {
 public:
  SimpleOperation(std::string_view name, std::string_view description, std::string skip_reason, Body body)
      : m_name(name), m_description(description), m_skip(std::move(skip_reason)), m_body(std::move(body)) {}
  std::string_view name() const override { return m_name; }
  std::string_view description() const override { return m_description; }
  Applicability applies(const GuestOs&) const override {
    return m_skip.empty() ? Applicability{} : Applicability{false, m_skip};
  }
  [[nodiscard]] Result<void> run(Target& t) const override { return m_body(t); }

 private:
  std::string_view m_name;
  std::string_view m_description;
  std::string m_skip;  // non-empty: does not apply, for this reason
  Body m_body;
};

template <class Body>
std::unique_ptr<Operation> make_op(std::string_view name, std::string_view description, std::string skip_reason,
                                   Body body) {
  return std::make_unique<SimpleOperation<Body>>(name, description, std::move(skip_reason), std::move(body));
}

// Removes `path` (a file, symlink or a whole directory tree) without reading
// it; records "<directory>" or its size as what was there.
[[nodiscard]] Result<void> remove_path(Target& t, const std::string& path, std::string detail);
// Removes what the globs match in the guest (remove_path each, Session::glob's
// one listing per directory); returns how many.
[[nodiscard]] Result<std::size_t> remove_glob(Target& t, std::span<const std::string_view> patterns,
                                              const std::string& detail);
// Empties a directory (its entries removed, the directory kept).
[[nodiscard]] Result<std::size_t> empty_dir(Target& t, const std::string& dir, const std::string& detail);
// Writes a file whose content must not appear in the report (a private key,
// a password hash): recorded as "<secret: N bytes>", replaced atomically with
// `mode` (negative: the mode of the file it replaces, 0600 for a new one) and
// the owner of the file it replaces (root for a new one).
[[nodiscard]] Result<void> write_secret(Target& t, const std::string& path, const std::string& content, int mode,
                                        std::string detail);
// Sets a guest path's mode (applied only when the Target applies).
[[nodiscard]] Result<void> set_mode(Target& t, const std::string& path, int mode);

}  // namespace utsushi::guest::identity
