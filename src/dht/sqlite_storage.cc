// SQLite backend for DhtStorage: WAL mode, one table for values, one for the routing table snapshot.
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <stdexcept>

#include "storjnet/dht_storage.h"

namespace storjnet {

namespace {

class Stmt {
 public:
  // Throws when the statement cannot be prepared (setup); with `or_null`, leaves ok() false instead.
  Stmt(sqlite3* db, const char* sql, bool or_null = false) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) == SQLITE_OK) return;
    if (or_null) {
      s_ = nullptr;
      return;
    }
    throw std::runtime_error(std::string("sqlite prepare failed: ") + sqlite3_errmsg(db));
  }
  bool ok() const { return s_ != nullptr; }
  // One step; false when not ok() or no row.
  bool row() { return s_ && sqlite3_step(s_) == SQLITE_ROW; }
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt* get() { return s_; }
  void reset() {
    if (!s_) return;
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

class SqliteStorage final : public DhtStorage {
 public:
  SqliteStorage(const std::filesystem::path& path, size_t max_db_bytes) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open " + path.string() + ": " + err);
    }
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    // Values of protocol version 2 and before were unsigned: dropped (their publishers put them again signed).
    exec("DROP TABLE IF EXISTS dht_values");
    exec("CREATE TABLE IF NOT EXISTS dht_values3 (key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER,"
         " owner BLOB NOT NULL, signature BLOB NOT NULL, stored_at INTEGER, original INTEGER)");
    exec("CREATE TABLE IF NOT EXISTS routing (id BLOB PRIMARY KEY, pk BLOB NOT NULL, endpoint TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    if (max_db_bytes > 0) {
      // SQLITE_FULL past this many pages: the same error a full disk gives.
      Stmt ps(db_, "PRAGMA page_size");
      long page = sqlite3_step(ps.get()) == SQLITE_ROW ? static_cast<long>(sqlite3_column_int64(ps.get(), 0)) : 4096;
      long pages = std::max<long>(1, static_cast<long>(max_db_bytes) / std::max<long>(page, 512));
      exec(("PRAGMA max_page_count=" + std::to_string(pages)).c_str());
    }
    get_ = std::make_unique<Stmt>(db_, "SELECT value, version, owner, signature, stored_at, original FROM dht_values3 WHERE key=?");
    put_ = std::make_unique<Stmt>(db_, "INSERT OR REPLACE INTO dht_values3 VALUES (?,?,?,?,?,?,?)");
    del_ = std::make_unique<Stmt>(db_, "DELETE FROM dht_values3 WHERE key=?");
    // Totals kept in memory: counting on every call would scan the table.
    Stmt totals(db_, "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)),0) FROM dht_values3");
    if (sqlite3_step(totals.get()) == SQLITE_ROW) {
      count_ = static_cast<size_t>(sqlite3_column_int64(totals.get(), 0));
      bytes_ = static_cast<size_t>(sqlite3_column_int64(totals.get(), 1));
    }
  }
  ~SqliteStorage() override {
    get_.reset();
    put_.reset();
    del_.reset();
    sqlite3_close(db_);
  }

  std::optional<StoredValue> get(const NodeId& key) override {
    auto& s = *get_;
    s.reset();
    sqlite3_bind_blob(s.get(), 1, key.bytes().data(), NodeId::kSize, SQLITE_STATIC);
    std::optional<StoredValue> out;
    if (sqlite3_step(s.get()) == SQLITE_ROW) out = row(s.get(), key);
    s.reset();  // an active statement would block the WAL checkpoint in flush()
    return out;
  }

  bool put(const StoredValue& v) override {
    auto old = get(v.key);
    auto& s = *put_;
    s.reset();
    sqlite3_bind_blob(s.get(), 1, v.key.bytes().data(), NodeId::kSize, SQLITE_STATIC);
    sqlite3_bind_blob(s.get(), 2, v.value.data(), static_cast<int>(v.value.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s.get(), 3, static_cast<sqlite3_int64>(v.version));
    sqlite3_bind_blob(s.get(), 4, v.owner.data(), static_cast<int>(v.owner.size()), SQLITE_STATIC);
    sqlite3_bind_blob(s.get(), 5, v.signature.data(), static_cast<int>(v.signature.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s.get(), 6, static_cast<sqlite3_int64>(v.stored_at_us));
    sqlite3_bind_int(s.get(), 7, v.original ? 1 : 0);
    bool ok = sqlite3_step(s.get()) == SQLITE_DONE;
    s.reset();
    if (!ok) return false;  // disk full or I/O error: the row (and the totals) are as they were
    if (old) {
      bytes_ -= old->value.size();
      --count_;
    }
    bytes_ += v.value.size();
    ++count_;
    return true;
  }

  void erase(const NodeId& key) override {
    auto old = get(key);
    if (!old) return;
    auto& s = *del_;
    s.reset();
    sqlite3_bind_blob(s.get(), 1, key.bytes().data(), NodeId::kSize, SQLITE_STATIC);
    bool ok = sqlite3_step(s.get()) == SQLITE_DONE;
    s.reset();
    if (!ok) return;  // the row stays (a later expiry pass tries again)
    bytes_ -= old->value.size();
    --count_;
  }

  void for_each(const std::function<void(const StoredValue&)>& fn) override {
    Stmt s(db_, "SELECT value, version, owner, signature, stored_at, original, key FROM dht_values3", true);
    std::vector<StoredValue> all;  // collected first: fn may write to the table
    while (s.row()) {
      NodeId key = NodeId::from_bytes({static_cast<const uint8_t*>(sqlite3_column_blob(s.get(), 6)), NodeId::kSize});
      all.push_back(row(s.get(), key));
    }
    for (auto& v : all) fn(v);
  }

  size_t count() override { return count_; }
  size_t bytes() override { return bytes_; }

  void save_contacts(const std::vector<Contact>& contacts) override {
    // One transaction: on any failure it rolls back and the previous snapshot stays.
    if (!try_exec("BEGIN")) return;
    Stmt ins(db_, "INSERT OR REPLACE INTO routing VALUES (?,?,?)", true);
    bool ok = ins.ok() && try_exec("DELETE FROM routing");
    for (size_t i = 0; ok && i < contacts.size(); ++i) {
      const Contact& c = contacts[i];
      ins.reset();
      std::string ep = c.endpoint.to_string();
      sqlite3_bind_blob(ins.get(), 1, c.id.bytes().data(), NodeId::kSize, SQLITE_STATIC);
      sqlite3_bind_blob(ins.get(), 2, c.key.data(), 32, SQLITE_STATIC);
      sqlite3_bind_text(ins.get(), 3, ep.c_str(), -1, SQLITE_TRANSIENT);
      ok = sqlite3_step(ins.get()) == SQLITE_DONE;
    }
    ins.reset();  // an active statement would keep COMMIT from finishing
    if (!ok || !try_exec("COMMIT")) try_exec("ROLLBACK");
  }

  std::vector<Contact> load_contacts() override {
    std::vector<Contact> out;
    Stmt s(db_, "SELECT pk, endpoint FROM routing", true);
    while (s.row()) {
      if (sqlite3_column_bytes(s.get(), 0) != 32) continue;
      PublicKey pk;
      std::memcpy(pk.data(), sqlite3_column_blob(s.get(), 0), 32);
      auto ep = Endpoint::parse(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 1)));
      if (ep) out.push_back(Contact::from_key(pk, *ep));
    }
    return out;
  }

  void flush() override { try_exec("PRAGMA wal_checkpoint(PASSIVE)"); }

  uint64_t load_epoch_floor() override {
    Stmt s(db_, "SELECT value FROM meta WHERE name='epoch_floor'", true);
    return s.row() ? static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)) : 0;
  }
  void save_epoch_floor(uint64_t floor) override {
    // Never throws: a failed write leaves the previous mark (the node keeps running; see the Threat model).
    std::string sql = "INSERT OR REPLACE INTO meta VALUES ('epoch_floor'," +
                      std::to_string(static_cast<int64_t>(floor)) + ")";
    sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

 private:
  bool try_exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
  // Setup only (the constructor may throw; nothing after it does).
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error(std::string("sqlite: ") + sql + ": " + msg);
    }
  }
  static StoredValue row(sqlite3_stmt* s, const NodeId& key) {
    StoredValue v;
    v.key = key;
    auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, 0));
    v.value.assign(p, p + sqlite3_column_bytes(s, 0));
    v.version = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
    if (sqlite3_column_bytes(s, 2) == static_cast<int>(v.owner.size()))
      std::memcpy(v.owner.data(), sqlite3_column_blob(s, 2), v.owner.size());
    if (sqlite3_column_bytes(s, 3) == static_cast<int>(v.signature.size()))
      std::memcpy(v.signature.data(), sqlite3_column_blob(s, 3), v.signature.size());
    v.stored_at_us = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
    v.original = sqlite3_column_int(s, 5) != 0;
    return v;
  }

  sqlite3* db_ = nullptr;
  std::unique_ptr<Stmt> get_, put_, del_;
  size_t count_ = 0, bytes_ = 0;
};

}  // namespace

std::unique_ptr<DhtStorage> make_sqlite_storage(const std::filesystem::path& path, size_t max_db_bytes) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  return std::make_unique<SqliteStorage>(path, max_db_bytes);
}

}  // namespace storjnet
