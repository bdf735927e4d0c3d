#include "fs/text_snapshots.hpp"

#include <utility>

namespace ipnfs::fs {

TextSnapshots::TextSnapshots(std::size_t budget) : budget_(budget) {}

TextSnapshots::Text TextSnapshots::share(File file, std::string fresh, bool stale_ok) {
    MutexLock lock(mu_);
    std::weak_ptr<const std::string>& slot = newest_[static_cast<std::size_t>(file)];
    Text newest = slot.lock();
    if (newest && *newest == fresh) return newest;
    if ((newest || !stale_ok) && held_->load() + fresh.size() > budget_) {
        return stale_ok ? newest : nullptr;
    }
    std::size_t size = fresh.size();
    held_->fetch_add(size);
    Text made(new std::string(std::move(fresh)), [held = held_, size](const std::string* text) {
        held->fetch_sub(size);
        delete text;  // NOLINT(cppcoreguidelines-owning-memory)
    });
    slot = made;
    return made;
}

}  // namespace ipnfs::fs
