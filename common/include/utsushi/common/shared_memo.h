#pragma once
// SharedMemo: results of an expensive computation per key (a file's content
// hash, an index of an image), remembered for the process's life, with one
// computation per key at a time: a call for a key another thread is
// computing waits for that result instead of computing it again.
//
// Thread-safe. The computation runs on the calling thread, without the lock.

#include <functional>
#include <future>
#include <map>
#include <mutex>

#include "utsushi/common/error.h"

namespace utsushi {

template <class Key, class T>
class SharedMemo {
 public:
  using Value = Result<T>;

  // The remembered value of `key`; else the result of the computation of it
  // under way (unless `retry(that result)`: then this call starts over); else
  // `compute()`, remembered when `keep(result)`. `compute` must not throw.
  Value get(const Key& key, const std::function<Value()>& compute, const std::function<bool(const Value&)>& keep,
            const std::function<bool(const Value&)>& retry = {}) {
    for (;;) {
      std::promise<Value> mine;
      std::shared_future<Value> theirs;
      {
        std::lock_guard lock(m_mutex);
        if (auto it = m_done.find(key); it != m_done.end()) {
          return it->second;
        }
        if (auto it = m_running.find(key); it != m_running.end()) {
          theirs = it->second;
        } else {
          m_running.emplace(key, mine.get_future().share());
        }
      }
      if (theirs.valid()) {
        Value v = theirs.get();
        if (retry && retry(v)) {
          continue;
        }
        return v;
      }
      Value v = compute();
      {
        std::lock_guard lock(m_mutex);
        if (v && keep(v)) {
          m_done.emplace(key, *v);
        }
        m_running.erase(key);
      }
      mine.set_value(v);
      return v;
    }
  }

 private:
  std::mutex m_mutex;
  std::map<Key, T> m_done;                                // guarded by m_mutex
  std::map<Key, std::shared_future<Value>> m_running;     // guarded by m_mutex
};

}  // namespace utsushi
