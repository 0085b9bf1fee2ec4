#include "utsushi/v2p/fs_resize.h"

#include <fmt/core.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/log.h"
#include "utsushi/common/process.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::v2p {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t k_mib = 1u << 20;

bool is_ext(std::string_view fs) { return fs == "ext2" || fs == "ext3" || fs == "ext4"; }

std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  std::size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Runs a tool; a non-zero exit (other than those in `ok_codes`) is an error
// naming the tool and its last line of output.
[[nodiscard]] Result<std::string> run_tool(const std::vector<std::string>& argv, std::initializer_list<int> ok_codes = {0}) {
  ProcessOptions o;
  o.timeout = std::chrono::hours(12);
  auto r = UTSUSHI_TRY(run_process(argv, o));
  bool ok = r.term_signal == 0 && std::find(ok_codes.begin(), ok_codes.end(), r.exit_code) != ok_codes.end();
  if (!ok) {
    std::string cmd;
    for (const auto& a : argv) {
      cmd += (cmd.empty() ? "" : " ") + a;
    }
    return fail(Errc::io_error, fmt::format("{} failed ({}): {}", cmd,
                                            r.term_signal ? fmt::format("signal {}", r.term_signal)
                                                          : fmt::format("exit {}", r.exit_code),
                                            last_line(r.output)));
  }
  return r.output;
}

// e2fsck -f -y: 0 clean, 1 errors corrected, 2 corrected (reboot advised for a mounted root).
[[nodiscard]] Result<std::string> fsck_ext(const std::string& dev) { return run_tool({"e2fsck", "-f", "-y", dev}, {0, 1, 2}); }

// A private directory to mount on, removed when destroyed.
class MountDir {
 public:
  [[nodiscard]] static Result<MountDir> create() {
    std::string tmpl = (fs::temp_directory_path() / "utsushi-v2p-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return fail_errno(errno, "mkdtemp");
    }
    return MountDir(tmpl);
  }
  MountDir(MountDir&& o) noexcept : m_path(std::exchange(o.m_path, {})), m_mounted(std::exchange(o.m_mounted, false)) {}
  ~MountDir() {
    if (m_mounted) {
      (void)run_process({"umount", m_path});
    }
    if (!m_path.empty()) {
      std::error_code ec;
      fs::remove(m_path, ec);
    }
  }
  [[nodiscard]] Result<void> mount(const std::string& dev, const std::string& type, const std::string& options) {
    UTSUSHI_TRY(run_tool({"mount", "-t", type, "-o", options, dev, m_path}));
    m_mounted = true;
    return {};
  }
  [[nodiscard]] Result<void> umount() {
    UTSUSHI_TRY(run_tool({"umount", m_path}));
    m_mounted = false;
    return {};
  }
  const std::string& path() const noexcept { return m_path; }

 private:
  explicit MountDir(std::string p) : m_path(std::move(p)) {}
  std::string m_path;
  bool m_mounted = false;
};

// The line of a tool's output that says what it did (the last line holding
// `key`), else its last line.
std::string summary_line(const std::string& out, std::string_view key) {
  std::string found;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t nl = out.find('\n', start);
    std::string_view line(out.data() + start, (nl == std::string::npos ? out.size() : nl) - start);
    if (line.find(key) != std::string_view::npos) {
      found = std::string(line);
    }
    start = nl == std::string::npos ? out.size() : nl + 1;
  }
  return found.empty() ? last_line(out) : found;
}

std::uint64_t parse_number_after(const std::string& text, const std::regex& re) {
  std::smatch m;
  return std::regex_search(text, m, re) ? std::stoull(m[1].str()) : 0;
}

std::unexpected<Error> too_small_for(const LayoutPlan& plan, const PartitionMove& m, std::uint64_t minimum) {
  std::uint64_t needed = (plan.target_size + (minimum - m.dst_length) + k_mib - 1) / k_mib * k_mib;
  return fail(Errc::out_of_range,
              fmt::format("the target ({} bytes, {}) is too small: it needs at least {} bytes ({}); the {} of "
                          "partition {} cannot be smaller than {} bytes ({})",
                          plan.target_size, format_bytes(plan.target_size), needed, format_bytes(needed), m.filesystem,
                          m.number, minimum, format_bytes(minimum)));
}

[[nodiscard]] Result<FsChange> grow(const std::string& target, const PartitionMove& m) {
  auto loop = UTSUSHI_TRY(LoopDevice::attach(target, m.dst_offset, m.dst_length, LoopDevice::Access::read_write));
  FsChange c{m.number, m.filesystem, m.action, m.src_length, m.dst_length, ""};
  if (is_ext(m.filesystem)) {
    UTSUSHI_TRY(fsck_ext(loop.path()));
    c.detail = last_line(UTSUSHI_TRY(run_tool({"resize2fs", loop.path()})));
  } else if (m.filesystem == "xfs") {
    auto dir = UTSUSHI_TRY(MountDir::create());
    UTSUSHI_TRY(dir.mount(loop.path(), "xfs", "nouuid"));
    c.detail = last_line(UTSUSHI_TRY(run_tool({"xfs_growfs", dir.path()})));
    UTSUSHI_TRY(dir.umount());
  } else if (m.filesystem == "ntfs") {
    c.detail = summary_line(UTSUSHI_TRY(run_tool({"ntfsresize", "--force", "--no-progress-bar", loop.path()})),
                            "resized NTFS");
  } else if (m.filesystem == "LVM2_member") {
    c.detail = last_line(UTSUSHI_TRY(run_tool({"pvresize", "--devices", loop.path(), loop.path()})));
  } else {
    return fail(Errc::not_supported, fmt::format("cannot grow {} (partition {})", m.filesystem, m.number));
  }
  return c;
}

[[nodiscard]] Result<FsChange> remake_swap(const std::string& target, const PartitionMove& m) {
  auto loop = UTSUSHI_TRY(LoopDevice::attach(target, m.dst_offset, m.dst_length, LoopDevice::Access::read_write));
  std::vector<std::string> argv = {"mkswap"};
  if (!m.uuid.empty()) {
    argv.insert(argv.end(), {"-U", m.uuid});
  }
  if (!m.label.empty()) {
    argv.insert(argv.end(), {"-L", m.label});
  }
  argv.push_back(loop.path());
  FsChange c{m.number, m.filesystem, m.action, m.src_length, m.dst_length, ""};
  c.detail = last_line(UTSUSHI_TRY(run_tool(argv)));
  return c;
}

[[nodiscard]] Result<FsChange> recreate_xfs(const std::string& target, const PartitionMove& m, const std::string& staged) {
  auto dst_loop = UTSUSHI_TRY(LoopDevice::attach(target, m.dst_offset, m.dst_length, LoopDevice::Access::read_write));
  std::vector<std::string> mkfs = {"mkfs.xfs", "-f", "-q"};
  if (!m.uuid.empty()) {
    mkfs.push_back("-m");
    mkfs.push_back("uuid=" + m.uuid);
  }
  if (!m.label.empty()) {
    mkfs.insert(mkfs.end(), {"-L", m.label});
  }
  mkfs.push_back(dst_loop.path());
  UTSUSHI_TRY(run_tool(mkfs));
  auto src_loop = UTSUSHI_TRY(LoopDevice::attach(staged, 0, m.src_length, LoopDevice::Access::read_only));
  auto src = UTSUSHI_TRY(MountDir::create());
  auto dst = UTSUSHI_TRY(MountDir::create());
  UTSUSHI_TRY(src.mount(src_loop.path(), "xfs", "ro,nouuid,norecovery"));
  UTSUSHI_TRY(dst.mount(dst_loop.path(), "xfs", "nouuid"));
  // cp -a: owners, modes, timestamps, hard links, xattrs (ACLs, SELinux labels).
  UTSUSHI_TRY(run_tool({"cp", "-a", "--sparse=always", src.path() + "/.", dst.path() + "/"}));
  UTSUSHI_TRY(dst.umount());
  UTSUSHI_TRY(src.umount());
  FsChange c{m.number, m.filesystem, m.action, m.src_length, m.dst_length, ""};
  c.detail = fmt::format("XFS re-created at {} (UUID {}, label '{}') and its files copied", format_bytes(m.dst_length),
                         m.uuid, m.label);
  return c;
}

}  // namespace

Result<LoopDevice> LoopDevice::attach(const std::string& backing, std::uint64_t offset, std::uint64_t length,
                                      Access access) {
  std::vector<std::string> argv = {"losetup", "--find", "--show", "--offset", std::to_string(offset), "--sizelimit",
                                   std::to_string(length)};
  if (access == Access::read_only) {
    argv.push_back("--read-only");
  }
  argv.push_back(backing);
  std::string out = UTSUSHI_TRY(run_tool(argv));
  std::string path = last_line(out);
  if (!path.starts_with("/dev/")) {
    return fail(Errc::io_error, "losetup gave no device: " + out);
  }
  return LoopDevice(path);
}

LoopDevice::~LoopDevice() {
  if (!m_path.empty()) {
    if (auto r = run_process({"losetup", "-d", m_path}); !r || !r->ok()) {
      UTSUSHI_LOG_WARN("cannot detach {}", m_path);
    }
  }
}

Result<std::unique_ptr<imagefmt::BlockDevice>> stage_partition(imagefmt::BlockDevice& image_view,
                                                              const PartitionMove& move, const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  {
    auto fd = UTSUSHI_TRY(open_fd(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (::ftruncate(fd.get(), static_cast<off_t>(move.src_length)) != 0) {
      return fail_errno(errno, "cannot size '" + path + "'");
    }
  }
  imagefmt::BlockDevice window(UTSUSHI_TRY(
      imagefmt::WindowFilter::create(image_view, move.src_offset, move.src_length, fmt::format("p{}", move.number))));
  auto file = std::make_unique<imagefmt::BlockDevice>(
      UTSUSHI_TRY(imagefmt::open_raw(path, imagefmt::RawOpenOptions{imagefmt::Access::read_write, false})));
  imagefmt::CopyOptions copy;
  copy.target_is_zeroed = true;
  copy.threads = 4;
  UTSUSHI_TRY(imagefmt::copy_device(window, *file, copy));
  return file;
}

Result<std::uint64_t> staged_minimum(const PartitionMove& m, const std::string& path) {
  if (is_ext(m.filesystem)) {
    UTSUSHI_TRY(fsck_ext(path));
    std::string info = UTSUSHI_TRY(run_tool({"dumpe2fs", "-h", path}));
    std::uint64_t block = parse_number_after(info, std::regex(R"(Block size:\s+(\d+))"));
    std::string p = UTSUSHI_TRY(run_tool({"resize2fs", "-P", path}));
    std::uint64_t blocks = parse_number_after(p, std::regex(R"(minimum size of the filesystem:\s+(\d+))"));
    if (block == 0 || blocks == 0) {
      return fail(Errc::io_error, "cannot read the minimum size of " + m.filesystem + " from resize2fs -P: " + last_line(p));
    }
    return blocks * block;
  }
  if (m.filesystem == "ntfs") {
    std::string info = UTSUSHI_TRY(run_tool({"ntfsresize", "--info", "--force", "--no-progress-bar", path}));
    std::uint64_t bytes = parse_number_after(info, std::regex(R"(You might resize at (\d+) bytes)"));
    if (bytes == 0) {
      return fail(Errc::io_error, "cannot read the minimum size of NTFS from ntfsresize --info: " + last_line(info));
    }
    return bytes;
  }
  return fail(Errc::not_supported, fmt::format("{} cannot be shrunk in place", m.filesystem));
}

Result<FsChange> shrink_staged(const LayoutPlan& plan, const PartitionMove& m, const std::string& path) {
  std::uint64_t minimum = UTSUSHI_TRY(staged_minimum(m, path));
  if (minimum > m.dst_length) {
    return too_small_for(plan, m, minimum);
  }
  FsChange c{m.number, m.filesystem, m.action, m.src_length, m.dst_length, ""};
  if (is_ext(m.filesystem)) {
    c.detail = last_line(UTSUSHI_TRY(run_tool({"resize2fs", path, std::to_string(m.dst_length / 1024) + "K"})));
  } else {
    c.detail = summary_line(UTSUSHI_TRY(run_tool({"ntfsresize", "--force", "--no-progress-bar", "-s",
                                                  std::to_string(m.dst_length), path})),
                            "resized NTFS");
  }
  return c;
}

Result<FsChange> finish_filesystem(const std::string& target_path, const PartitionMove& m,
                                   const std::string& staged_source) {
  switch (m.action) {
    case FsAction::grow:
    case FsAction::grow_pv: return grow(target_path, m);
    case FsAction::remake_swap: return remake_swap(target_path, m);
    case FsAction::recreate: return recreate_xfs(target_path, m, staged_source);
    case FsAction::shrink:
    case FsAction::copy: break;
  }
  return FsChange{m.number, m.filesystem, m.action, m.src_length, m.dst_length, ""};
}

std::string missing_tools(const LayoutPlan& plan) {
  std::vector<std::string> need;
  for (const PartitionMove& m : plan.partitions) {
    if (m.action == FsAction::copy) {
      continue;
    }
    need.push_back("losetup");
    if (is_ext(m.filesystem)) {
      need.insert(need.end(), {"e2fsck", "resize2fs", "dumpe2fs"});
    } else if (m.filesystem == "xfs") {
      need.insert(need.end(), {"mount", "umount", m.action == FsAction::recreate ? "mkfs.xfs" : "xfs_growfs"});
    } else if (m.filesystem == "ntfs") {
      need.push_back("ntfsresize");
    } else if (m.filesystem == "swap") {
      need.push_back("mkswap");
    } else if (m.filesystem == "LVM2_member") {
      need.push_back("pvresize");
    }
  }
  std::string missing;
  for (const std::string& p : need) {
    if (!program_exists(p) && missing.find(p) == std::string::npos) {
      missing += (missing.empty() ? "" : ", ") + p;
    }
  }
  return missing;
}

}  // namespace utsushi::v2p
