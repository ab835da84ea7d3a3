#include <unordered_map>

#include "storjnet/dht_storage.h"

namespace storjnet {

namespace {
class MemoryStorage final : public DhtStorage {
 public:
  std::optional<StoredValue> get(const NodeId& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  bool put(const StoredValue& v) override {
    auto it = values_.find(v.key);
    if (it != values_.end()) bytes_ -= it->second.value.size();
    bytes_ += v.value.size();
    values_[v.key] = v;
    return true;
  }
  void erase(const NodeId& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) return;
    bytes_ -= it->second.value.size();
    values_.erase(it);
  }
  void for_each(const std::function<void(const StoredValue&)>& fn) override {
    for (auto& [k, v] : values_) fn(v);
  }
  size_t count() override { return values_.size(); }
  size_t bytes() override { return bytes_; }
  void save_contacts(const std::vector<Contact>& c) override { contacts_ = c; }
  std::vector<Contact> load_contacts() override { return contacts_; }

 private:
  std::unordered_map<NodeId, StoredValue> values_;
  std::vector<Contact> contacts_;
  size_t bytes_ = 0;
};
}  // namespace

std::unique_ptr<DhtStorage> make_memory_storage() { return std::make_unique<MemoryStorage>(); }

}  // namespace storjnet
