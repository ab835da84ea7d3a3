// FaultyStorage: an in-memory DhtStorage with a disk's failure modes, for the simulator and tests.
//
// The state lives in a Disk shared by the node's incarnations: a restart opens a new FaultyStorage on the
// same Disk, as a restarted process reopens its database.
//  - fail_writes: while set, every write fails (put returns false, the routing snapshot and the epoch floor
//    keep their previous versions), as on a full disk or after an I/O error.
//  - crash(): writes younger than sync_delay are lost (a value reverts to its last synced version, or goes),
//    as an OS crash or power loss loses what was not yet on the platter.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "storjnet/dht_storage.h"
#include "storjnet/environment.h"

namespace storjnet::sim {

struct Disk {
  explicit Disk(std::function<TimePoint()> clock, Duration sync_delay = Duration(0))
      : clock(std::move(clock)), sync_delay(sync_delay) {}

  std::function<TimePoint()> clock;
  Duration sync_delay;
  bool fail_writes = false;
  uint64_t failed_puts = 0;

  // Loses every write younger than sync_delay. Returns how many values lost their latest write.
  size_t crash();

  struct Entry {
    StoredValue value;
    TimePoint written{};
    std::optional<StoredValue> synced;  // the version before `value`, when `value` may not be synced yet
  };
  std::map<NodeId, Entry> values;
  std::vector<Contact> contacts;
  uint64_t epoch_floor = 0;
};

class FaultyStorage final : public DhtStorage {
 public:
  explicit FaultyStorage(std::shared_ptr<Disk> disk) : disk_(std::move(disk)) {}

  std::optional<StoredValue> get(const NodeId& key) override;
  bool put(const StoredValue& v) override;
  void erase(const NodeId& key) override { disk_->values.erase(key); }
  void for_each(const std::function<void(const StoredValue&)>& fn) override;
  size_t count() override { return disk_->values.size(); }
  size_t bytes() override;
  void save_contacts(const std::vector<Contact>& contacts) override;
  std::vector<Contact> load_contacts() override { return disk_->contacts; }
  uint64_t load_epoch_floor() override { return disk_->epoch_floor; }
  void save_epoch_floor(uint64_t floor) override;

 private:
  std::shared_ptr<Disk> disk_;
};

}  // namespace storjnet::sim
