#include "sim/faulty_storage.h"

namespace storjnet::sim {

size_t Disk::crash() {
  TimePoint now = clock();
  size_t lost = 0;
  for (auto it = values.begin(); it != values.end();) {
    Entry& e = it->second;
    if (now - e.written >= sync_delay) {
      ++it;
      continue;
    }
    ++lost;
    if (e.synced) {
      e.value = *e.synced;
      e.synced.reset();
      ++it;
    } else {
      it = values.erase(it);
    }
  }
  return lost;
}

std::optional<StoredValue> FaultyStorage::get(const NodeId& key) {
  auto it = disk_->values.find(key);
  if (it == disk_->values.end()) return std::nullopt;
  return it->second.value;
}

bool FaultyStorage::put(const StoredValue& v) {
  if (disk_->fail_writes) {
    ++disk_->failed_puts;
    return false;
  }
  TimePoint now = disk_->clock();
  auto [it, fresh] = disk_->values.try_emplace(v.key);
  Disk::Entry& e = it->second;
  if (!fresh) {
    // The version being replaced survives a crash only if it had time to reach the disk.
    if (now - e.written >= disk_->sync_delay) e.synced = e.value;
  }
  e.value = v;
  e.written = now;
  return true;
}

void FaultyStorage::for_each(const std::function<void(const StoredValue&)>& fn) {
  for (auto& [key, e] : disk_->values) fn(e.value);
}

size_t FaultyStorage::bytes() {
  size_t n = 0;
  for (auto& [key, e] : disk_->values) n += e.value.value.size();
  return n;
}

void FaultyStorage::save_contacts(const std::vector<Contact>& contacts) {
  if (!disk_->fail_writes) disk_->contacts = contacts;
}

void FaultyStorage::save_epoch_floor(uint64_t floor) {
  if (!disk_->fail_writes) disk_->epoch_floor = floor;
}

}  // namespace storjnet::sim
