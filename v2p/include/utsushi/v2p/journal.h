#pragma once
// The progress journal of a restore, so that re-running the same command
// after Ctrl-C, kill -9 or a power loss resumes and ends with the same disk.
//
// Where: one JSON file per target in a state directory on the machine that
// runs v2p (default /var/lib/utsushi/v2p; on a live medium, point --state-dir
// at persistent storage, or a power loss restarts the restore from the
// beginning - never from a wrong point). It is replaced atomically
// (AtomicFile) after every step, and a window is recorded only after the
// target was flushed, so the journal never claims more than the disk holds.
//
// Invalidation: the file is named after the target's identity (target.h) and
// holds a key over the image's identity (every file of its chain: path,
// device, inode, size, modification time), the used-block plan and the
// target layout. Any difference - another image, a changed image, another
// layout, another disk at the same path - discards it and the restore starts
// over. A finished restore removes its journal.

#include <set>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::v2p {

class Journal {
 public:
  // Loads the journal of `target_identity` from `dir` (created when
  // missing). A journal with another key is removed (resumed() is false).
  [[nodiscard]] static Result<Journal> open(const std::string& dir, const std::string& target_identity,
                                            const std::string& key);

  // Whether a journal of this same restore was found.
  bool resumed() const noexcept { return m_resumed; }
  bool window_done(std::size_t index) const { return m_windows.contains(index); }
  std::size_t windows_done() const noexcept { return m_windows.size(); }
  bool step_done(std::string_view step) const { return m_steps.contains(std::string(step)); }

  // Records a window (the caller flushed the target first) or a step; the
  // file is replaced atomically.
  [[nodiscard]] Result<void> mark_window(std::size_t index);
  [[nodiscard]] Result<void> mark_step(std::string_view step);

  // A path in the state directory for this restore's working files
  // ("p2.stage" -> DIR/target-HASH.p2.stage); removed by finish().
  std::string work_path(std::string_view suffix);

  // The restore finished: the journal and its working files are removed.
  [[nodiscard]] Result<void> finish();

  const std::string& path() const noexcept { return m_path; }

 private:
  Journal(std::string path, std::string key) : m_path(std::move(path)), m_key(std::move(key)) {}
  [[nodiscard]] Result<void> save();

  std::string m_path;
  std::string m_key;
  bool m_resumed = false;
  std::set<std::size_t> m_windows;
  std::set<std::string> m_steps;
  std::set<std::string> m_work_files;
};

// A short stable digest of `text` (hex XXH3-64), for identities and keys.
std::string digest(std::string_view text);

}  // namespace utsushi::v2p
