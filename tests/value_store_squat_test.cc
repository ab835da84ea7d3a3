// Self-named keys (docs/protocol.md 5, "Ownership"; dht/value_store.h): the key "storjnet-relay/" + hex(B's id),
// B's relay list, belongs to B. A squatter that stored its own value there first is displaced by B's, whatever
// the versions, and cannot displace B's; over either storage backend (the rule lives in ValueStore, above them).
#include <gtest/gtest.h>

#include "dht/signed_value.h"
#include "dht/value_store.h"
#include "dht/vote.h"
#include "temp_dir.h"

using namespace storjnet;
using namespace storjnet::dht;

namespace {

Identity identity_n(uint32_t n) {
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), &n, 4);
  seed[31] = 0x77;
  return Identity::from_seed(seed);
}

StoredValue signed_value(const std::string& user_key, std::string_view bytes, uint64_t version, const Identity& owner) {
  StoredValue v;
  v.key = dht_key(user_key);
  v.value.assign(bytes.begin(), bytes.end());
  v.version = version;
  sign_value(v, owner, 1);
  return v;
}

NodeId peer_n(uint32_t n) { return identity_n(100 + n).id(); }

// The attack and the rule over one storage: m squats b's key first, b takes it back, m cannot take it again.
void squatter_gives_way(DhtStorage& storage) {
  DhtConfig cfg;
  cfg.max_bytes_per_publisher = 1000;
  ValueStore vs(storage, cfg);
  Identity b = identity_n(1), m = identity_n(2);
  const std::string b_key = self_named_user_key(b.id());
  ASSERT_EQ(dht_key(b_key), self_named_key(b.public_key()));
  // m's value under b's name, far newer than b's: nothing at the storing node says whose name it is yet.
  StoredValue squat = signed_value(b_key, std::string(400, 'm'), 1'000'000, m);
  ASSERT_TRUE(verify_value(squat, 1));
  ASSERT_EQ(vs.store(squat, peer_n(1)), ValueStore::Result::kStored);
  // b's own value takes the key (first come, first served would have refused it: kOtherOwner).
  StoredValue mine = signed_value(b_key, "b's relays", 10, b);
  EXPECT_EQ(ValueStore::claim(mine, squat), ValueStore::Claim::kReclaim);
  EXPECT_EQ(vs.store(mine, peer_n(2)), ValueStore::Result::kReclaimed);
  ASSERT_TRUE(vs.get(mine.key));
  EXPECT_EQ(vs.get(mine.key)->owner, b.public_key());
  EXPECT_EQ(vs.get(mine.key)->value, mine.value);
  EXPECT_EQ(vs.count(), 1u);
  EXPECT_EQ(vs.bytes(), mine.value.size());
  // The squatter's charge went with its value: its sender may store 400 + 256 bytes again within its 1000.
  StoredValue other = signed_value("elsewhere", std::string(600, 'o'), 10, m);
  EXPECT_EQ(vs.store(other, peer_n(1)), ValueStore::Result::kStored);
  // m cannot take it back, however new its version; a republished copy of its old value neither.
  StoredValue again = signed_value(b_key, "m again", 2'000'000, m);
  EXPECT_EQ(ValueStore::claim(again, mine), ValueStore::Claim::kSquat);
  EXPECT_EQ(vs.store(again, peer_n(3)), ValueStore::Result::kSquatRefused);
  EXPECT_EQ(vs.store(squat, peer_n(3)), ValueStore::Result::kSquatRefused);
  EXPECT_EQ(vs.get(mine.key)->value, mine.value);
  // b's own updates follow the version rule as ever.
  StoredValue older = signed_value(b_key, "older", 9, b);
  EXPECT_EQ(vs.store(older, peer_n(2)), ValueStore::Result::kHeldNewer);
  StoredValue newer = signed_value(b_key, "newer", 11, b);
  EXPECT_EQ(vs.store(newer, peer_n(2)), ValueStore::Result::kStored);
  EXPECT_EQ(vs.get(mine.key)->value, newer.value);
}

}  // namespace

TEST(ValueStoreSquat, TheNamedOwnerDisplacesASquatterAndKeepsItsKey) {
  auto storage = make_memory_storage();
  squatter_gives_way(*storage);
}

TEST(ValueStoreSquat, SqliteStorageToo) {
  auto dir = test::temp_dir("squat");
  {
    auto storage = make_sqlite_storage(dir / "db");
    squatter_gives_way(*storage);
  }
  // A squatter's value stored before a restart gives way after it.
  Identity b = identity_n(1), m = identity_n(2);
  const std::string b_key = self_named_user_key(b.id());
  {
    auto storage = make_sqlite_storage(dir / "db2");
    DhtConfig cfg;
    ValueStore vs(*storage, cfg);
    ASSERT_EQ(vs.store(signed_value(b_key, "squat", 100, m), peer_n(1)), ValueStore::Result::kStored);
  }
  auto storage = make_sqlite_storage(dir / "db2");
  DhtConfig cfg;
  ValueStore vs(*storage, cfg);
  ASSERT_EQ(vs.get(dht_key(b_key))->owner, m.public_key());
  EXPECT_EQ(vs.store(signed_value(b_key, "b", 50, b), peer_n(2)), ValueStore::Result::kReclaimed);
  EXPECT_EQ(vs.get(dht_key(b_key))->owner, b.public_key());
  std::filesystem::remove_all(dir);
}

// Only the key named after the arriving value's own owner is claimed: other keys stay first come, first served,
// and a node's name binds no one else's key (b cannot take a key named after m, nor any ordinary key).
TEST(ValueStoreSquat, OnlyTheOwnersOwnNameIsClaimed) {
  DhtConfig cfg;
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  Identity b = identity_n(1), m = identity_n(2), c = identity_n(3);
  StoredValue first = signed_value("storjnet-relay/" + c.id().hex(), "m first", 10, m);
  ASSERT_EQ(vs.store(first, peer_n(1)), ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(signed_value("storjnet-relay/" + c.id().hex(), "b", 20, b), peer_n(2)),
            ValueStore::Result::kOtherOwner);  // c's name is neither m's nor b's: the first owner keeps it
  EXPECT_EQ(vs.store(signed_value("storjnet-relay/" + c.id().hex(), "c", 5, c), peer_n(3)),
            ValueStore::Result::kReclaimed);  // until c comes
  StoredValue plain = signed_value("some key", "m", 10, m);
  ASSERT_EQ(vs.store(plain, peer_n(1)), ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(signed_value("some key", "b", 20, b), peer_n(2)), ValueStore::Result::kOtherOwner);
}

// A get that names no owner: under a self-named key the named owner wins the vote however many squatters' copies
// the lookup met (3 holders of m's list, 1 of b's); under any other key the most holders still win.
TEST(ValueStoreSquat, TheNamedOwnerWinsAnOwnerlessVote) {
  Identity b = identity_n(1), m = identity_n(2);
  auto found = [&](const std::string& key) {
    std::vector<FoundValue> f;
    for (uint32_t i = 0; i < 3; ++i) f.push_back({Contact{}, signed_value(key, "m", 100 + i, m)});
    f.push_back({Contact{}, signed_value(key, "b", 10, b)});
    return f;
  };
  auto named = tally(found(self_named_user_key(b.id())), std::nullopt);
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].owner, b.public_key());
  EXPECT_EQ(named[0].holders, 1u);
  EXPECT_EQ(named[1].holders, 3u);
  auto plain = tally(found("plain"), std::nullopt);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].owner, m.public_key());
}
