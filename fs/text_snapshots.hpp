// The rendered text of one network's ctl, stats and metrics files (or of the
// mount root's ipnfs.prom), shared by every
// descriptor that read the same content, and bounded: a reader keeps the
// text its read at offset 0 rendered (one consistent snapshot across several
// reads), but descriptors never hold a copy each.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "bus/thread_safety.hpp"

namespace ipnfs::fs {

class TextSnapshots {
  public:
    using Text = std::shared_ptr<const std::string>;
    enum class File : std::uint8_t { ctl, stats, metrics, root_metrics, count };

    // `budget`: bytes of text held at once (-o max_text_bytes), beyond the
    // newest text of each file.
    explicit TextSnapshots(std::size_t budget);

    // The snapshot a reader keeps for `fresh`, just rendered: the newest one
    // if the content is the same; a new one if the budget allows; else the
    // newest one, stale (the memory is held by other descriptors' older
    // texts: they keep it until they close or read at offset 0 again).
    // Without `stale_ok`, null instead of a stale text: ipnfs.prom's text
    // depends on who reads it, so another reader's is never handed out.
    Text share(File file, std::string fresh, bool stale_ok = true) EXCLUDES(mu_);
    // Bytes held by open descriptors' texts.
    [[nodiscard]] std::size_t held() const { return held_->load(); }

  private:
    const std::size_t budget_;
    // Shared with each text's deleter, which may run after this object is
    // gone (a descriptor closed after its network was removed).
    std::shared_ptr<std::atomic<std::size_t>> held_ = std::make_shared<std::atomic<std::size_t>>(0);
    Mutex mu_;  // never held across a bus call
    std::array<std::weak_ptr<const std::string>, static_cast<std::size_t>(File::count)> newest_
        GUARDED_BY(mu_);
};

}  // namespace ipnfs::fs
