// DhtStorage: where a node keeps DHT values and its routing table. Two backends: in memory (simulator,
// tests) and SQLite in WAL mode (real nodes), so a restarted node serves what it acknowledged and rejoins.
// Backends never throw once open: a failed write (full disk, I/O error) is reported by put's result or
// ignored (a snapshot or mark keeps its previous version), and the node keeps serving what it holds.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/identity.h"

namespace storjnet {

// A signed DHT value (docs/protocol.md section 5): `owner` signed (network id, key, version, value).
struct StoredValue {
  NodeId key;
  Bytes value;
  uint64_t version = 0;       // publisher's wall clock (us) at put time; larger is newer
  PublicKey owner{};          // the publisher's Ed25519 key: only it may replace the value
  Signature signature{};      // Ed25519 by `owner` (see dht/signed_value.h)
  uint64_t stored_at_us = 0;  // when this node last received it (wall clock), for expiry
  bool original = false;      // this node is the original publisher (it republishes every 24 h)

  NodeId publisher() const { return Identity::id_of(owner); }
};

class DhtStorage {
 public:
  virtual ~DhtStorage() = default;
  virtual std::optional<StoredValue> get(const NodeId& key) = 0;
  // Inserts or replaces the value for v.key. False when the write failed: nothing changed.
  [[nodiscard]] virtual bool put(const StoredValue& v) = 0;
  virtual void erase(const NodeId& key) = 0;
  virtual void for_each(const std::function<void(const StoredValue&)>& fn) = 0;
  virtual size_t count() = 0;
  virtual size_t bytes() = 0;
  // Routing table snapshot: replaced as a whole (a failed write keeps the previous one).
  virtual void save_contacts(const std::vector<Contact>& contacts) = 0;
  virtual std::vector<Contact> load_contacts() = 0;
  virtual void flush() {}
  // The engine's epoch high-water mark (docs/protocol.md 1.4): nonces stay ordered across restarts and
  // backward clock steps. 0 when none was saved; backends without durable storage keep nothing.
  virtual uint64_t load_epoch_floor() { return 0; }
  virtual void save_epoch_floor(uint64_t) {}
};

std::unique_ptr<DhtStorage> make_memory_storage();
// Opens (creating when absent) `path` as a SQLite database in WAL mode. Throws std::runtime_error with the
// reason when it cannot. max_db_bytes > 0 caps the database file: past it writes fail as on a full disk.
std::unique_ptr<DhtStorage> make_sqlite_storage(const std::filesystem::path& path, size_t max_db_bytes = 0);

}  // namespace storjnet
