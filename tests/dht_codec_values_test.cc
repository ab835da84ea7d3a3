// DHT codec and value store in isolation: wire round trips, signed values, versions, owners and quotas.
#include <gtest/gtest.h>

#include "dht/codec.h"
#include "dht/signed_value.h"
#include "dht/value_store.h"
#include "dht_test_util.h"

using namespace storjnet;
using namespace storjnet::dht;
using namespace storjnet::test;

namespace {
Bytes as_bytes_copy(std::string_view s) { return Bytes(s.begin(), s.end()); }
}  // namespace

TEST(DhtCodec, RoundTripsAndRejectsGarbage) {
  std::vector<Contact> cs;
  for (uint32_t i = 0; i < 20; ++i) cs.push_back(contact_n(i));
  cs.push_back(Contact::from_key(contact_n(99).key, *Endpoint::parse("[2001:db8::1]:4444")));
  auto back = decode_contacts(encode_contacts(cs));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, cs);

  NodeId key = dht_key("k");
  EXPECT_EQ(*decode_id_request(encode_id_request(key)), key);
  // find_node: [target] as before, or [target, flags]; bit 0 asks for placement, other bits are ignored.
  auto plain = decode_find_node_request(encode_id_request(key));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->target, key);
  EXPECT_FALSE(plain->placement);
  auto placed = decode_find_node_request(encode_find_node_request({key, true}));
  ASSERT_TRUE(placed);
  EXPECT_EQ(placed->target, key);
  EXPECT_TRUE(placed->placement);
  EXPECT_EQ(encode_find_node_request({key, false}), encode_id_request(key));
  EXPECT_FALSE(decode_id_request(encode_find_node_request({key, true})));  // find_value takes no flags
  Bytes with_flags = encode_find_node_request({key, true});
  with_flags.back() = 0x78;  // unknown bits only: a plain request
  ASSERT_TRUE(decode_find_node_request(with_flags));
  EXPECT_FALSE(decode_find_node_request(with_flags)->placement);
  EXPECT_FALSE(decode_find_node_request(with_flags)->verdict);
  EXPECT_FALSE(decode_find_node_request(with_flags)->marks);
  with_flags.back() = 0xc0;  // nil for flags: malformed
  EXPECT_FALSE(decode_find_node_request(with_flags));
  // Bit 1 asks for the answerer's dial-back verdict, alone or with placement.
  auto verdict = decode_find_node_request(encode_find_node_request({key, false, true}));
  ASSERT_TRUE(verdict);
  EXPECT_TRUE(verdict->verdict);
  EXPECT_FALSE(verdict->placement);
  auto both = decode_find_node_request(encode_find_node_request({key, true, true}));
  ASSERT_TRUE(both && both->verdict && both->placement);
  EXPECT_FALSE(decode_find_node_request(encode_find_node_request({key, true}))->verdict);
  // Bit 2 asks for marks on the contacts the answerer has not confirmed (a put's request: all three bits).
  auto marks = decode_find_node_request(encode_find_node_request({key, true, true, true}));
  ASSERT_TRUE(marks && marks->marks && marks->verdict && marks->placement);
  EXPECT_FALSE(decode_find_node_request(encode_find_node_request({key, true, true}))->marks);

  // find_node's answer: [contact...] as before, or [[contact...], verdict] when asked for the verdict.
  std::vector<Contact> two = {contact_n(2), contact_n(3)};
  auto plain_answer = decode_find_node_answer(encode_contacts(two));
  ASSERT_TRUE(plain_answer);
  EXPECT_EQ(plain_answer->contacts, two);
  EXPECT_FALSE(plain_answer->verdict);
  EXPECT_EQ(encode_find_node_answer({two, std::nullopt}), encode_contacts(two));
  for (auto v : {DialBackVerdict::kUnreachable, DialBackVerdict::kReachable, DialBackVerdict::kUnknown}) {
    auto a = decode_find_node_answer(encode_find_node_answer({two, v}));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->contacts, two);
    EXPECT_EQ(a->verdict, v);
  }
  auto empty = decode_find_node_answer(encode_find_node_answer({{}, DialBackVerdict::kReachable}));
  ASSERT_TRUE(empty && empty->contacts.empty() && empty->verdict == DialBackVerdict::kReachable);
  Bytes bad_verdict = encode_find_node_answer({two, DialBackVerdict::kUnknown});
  bad_verdict.back() = 0x03;  // no verdict 3: malformed
  EXPECT_FALSE(decode_find_node_answer(bad_verdict));
  bad_verdict.back() = 0xc3;  // true for the verdict: malformed
  EXPECT_FALSE(decode_find_node_answer(bad_verdict));
  // [[contact...], verdict, unconfirmed]: a bit per contact sent, re-indexed past a contact the decoder skips.
  std::vector<Contact> three = {contact_n(2), contact_n(3), contact_n(4)};
  auto marked = decode_find_node_answer(encode_find_node_answer({three, DialBackVerdict::kReachable, 0b101u}));
  ASSERT_TRUE(marked && marked->unconfirmed);
  EXPECT_EQ(marked->contacts, three);
  EXPECT_EQ(marked->verdict, DialBackVerdict::kReachable);
  EXPECT_EQ(*marked->unconfirmed, 0b101u);
  EXPECT_FALSE(decode_find_node_answer(encode_find_node_answer({three, DialBackVerdict::kUnknown}))->unconfirmed);
  auto no_verdict = decode_find_node_answer(encode_find_node_answer({three, std::nullopt, 0b10u}));
  ASSERT_TRUE(no_verdict && no_verdict->unconfirmed);
  EXPECT_EQ(no_verdict->verdict, DialBackVerdict::kUnknown);  // encoded as unknown
  EXPECT_EQ(*no_verdict->unconfirmed, 0b10u);
  // Bits past the contacts are not encoded, and are malformed when a peer sends them.
  EXPECT_EQ(*decode_find_node_answer(encode_find_node_answer({three, DialBackVerdict::kReachable, 0xffu}))->unconfirmed,
            0b111u);
  Bytes past = encode_find_node_answer({three, DialBackVerdict::kReachable, 0b100u});
  past.back() = 0x08;  // bit 3, for a 4th contact that was not sent
  EXPECT_FALSE(decode_find_node_answer(past));
  past.back() = 0xc0;  // nil for the marks: malformed
  EXPECT_FALSE(decode_find_node_answer(past));
  // A contact the decoder skips (port 0) takes its bit with it: the marks stay on the contacts they named.
  Contact unusable = contact_n(5);
  unusable.endpoint.port = 0;
  auto skipped = decode_find_node_answer(
      encode_find_node_answer({{contact_n(2), unusable, contact_n(4)}, DialBackVerdict::kReachable, 0b110u}));
  ASSERT_TRUE(skipped && skipped->unconfirmed);
  ASSERT_EQ(skipped->contacts.size(), 2u);
  EXPECT_EQ(skipped->contacts[1], contact_n(4));
  EXPECT_EQ(*skipped->unconfirmed, 0b10u);
  // The asker drops contacts too (puzzle, families): the marks follow the ones it keeps, by id.
  std::vector<Contact> sent = {contact_n(2), contact_n(3), contact_n(4), contact_n(5)};
  EXPECT_EQ(marks_of_kept(sent, 0b1010u, {contact_n(2), contact_n(4), contact_n(5)}), 0b100u);
  EXPECT_EQ(marks_of_kept(sent, 0b1010u, {contact_n(3), contact_n(5)}), 0b11u);
  EXPECT_EQ(marks_of_kept(sent, 0b1111u, {}), 0u);
  EXPECT_EQ(marks_of_kept(sent, 0b0001u, {contact_n(9), contact_n(2)}), 0u);  // not kept from `sent`: no marks

  StoredValue v;
  v.key = key;
  v.value = {1, 2, 3};
  v.version = 77;
  sign_value(v, identity_n(1), 7);
  auto st = decode_store(encode_store(v));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->key, key);
  EXPECT_EQ(st->value, v.value);
  EXPECT_EQ(st->version, 77u);
  EXPECT_EQ(st->owner, v.owner);
  EXPECT_EQ(st->signature, v.signature);
  EXPECT_EQ(st->publisher(), identity_n(1).id());
  EXPECT_TRUE(verify_value(*st, 7));

  FindValueResponse fv;
  fv.value = v;
  auto fvb = decode_find_value_response(encode_find_value_response(fv), key);
  ASSERT_TRUE(fvb && fvb->value);
  EXPECT_EQ(fvb->value->value, v.value);
  EXPECT_TRUE(same_signed_value(*fvb->value, v));
  FindValueResponse fc;
  fc.contacts = cs;
  auto fcb = decode_find_value_response(encode_find_value_response(fc), key);
  ASSERT_TRUE(fcb);
  EXPECT_FALSE(fcb->value);
  EXPECT_EQ(fcb->contacts.size(), cs.size());

  uint8_t garbage[] = {0x93, 0xc4, 0x05, 1, 2};
  EXPECT_FALSE(decode_contacts(garbage));
  EXPECT_FALSE(decode_store(garbage));
  EXPECT_FALSE(decode_id_request(garbage));
  EXPECT_FALSE(decode_find_value_response(garbage, key));
  // An array header claiming 2^32 elements must not allocate or crash.
  uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(decode_contacts(huge));
  // Contacts with garbage addresses are skipped, the rest kept.
  Bytes mixed = encode_contacts({cs[0], Contact::from_key(cs[1].key, Endpoint::v4(0, 0)), cs[2]});
  auto m = decode_contacts(mixed);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->size(), 2u);
}

TEST(DhtCodec, DialBackRequestsRoundTripAndBadOnesAreRejected) {
  DialBackRequest ask;
  ask.kind = DialBackKind::kSelfCheck;
  ask.nonce[3] = 7;
  ask.via = *Endpoint::parse("198.51.100.7:4000");
  auto back = decode_dial_back_request(encode_dial_back_request(ask));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, DialBackKind::kSelfCheck);
  EXPECT_EQ(back->nonce, ask.nonce);
  EXPECT_EQ(back->via, ask.via);
  DialBackRequest pf;
  pf.kind = DialBackKind::kProbeFor;
  pf.target = contact_n(3);
  back = decode_dial_back_request(encode_dial_back_request(pf));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->target, pf.target);
  DialBackRequest probe;
  probe.kind = DialBackKind::kProbe;
  probe.nonce[0] = 1;
  back = decode_dial_back_request(encode_dial_back_request(probe));
  ASSERT_TRUE(back && back->kind == DialBackKind::kProbe && back->nonce == probe.nonce);
  back = decode_dial_back_request(encode_dial_back_request(DialBackRequest{}));
  ASSERT_TRUE(back && back->kind == DialBackKind::kVerdict);
  EXPECT_EQ(encode_dial_back_request(DialBackRequest{}), (Bytes{0x91, 0x05}));  // [5]
  for (auto v : {DialBackVerdict::kUnreachable, DialBackVerdict::kReachable, DialBackVerdict::kUnknown})
    EXPECT_EQ(decode_dial_back_verdict(encode_dial_back_verdict(v)), v);
  // Refused: version 3's ask and probe (kinds 0 and 1), unknown kinds, wrong sizes, a short nonce, an unusable
  // address, a verdict out of range or of another type.
  Bytes nonce16(16, 0);
  auto arr = [](std::initializer_list<uint8_t> head, const Bytes& tail = {}) {
    Bytes b(head);
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  };
  Bytes bin16 = arr({0xc4, 16}, nonce16);
  EXPECT_FALSE(decode_dial_back_request(arr({0x92, 0x01}, bin16)));        // [1, nonce]: old probe
  EXPECT_FALSE(decode_dial_back_request(arr({0x92, 0x06}, bin16)));        // kind 6
  EXPECT_FALSE(decode_dial_back_request(arr({0x93, 0x04}, bin16)));        // probe of 3 items (short)
  EXPECT_FALSE(decode_dial_back_request(arr({0x92, 0x05, 0xc0})));         // verdict with an extra item
  EXPECT_FALSE(decode_dial_back_request(arr({0x92, 0x04, 0xc4, 15}, Bytes(15, 0))));  // nonce of 15 bytes
  EXPECT_FALSE(decode_dial_back_request(arr({0x94, 0x02}, bin16)));       // no address
  Bytes zero_port = arr({0x94, 0x02}, bin16);
  for (uint8_t b : {0xc4, 4, 198, 51, 100, 7, 0x00}) zero_port.push_back(b);
  EXPECT_FALSE(decode_dial_back_request(zero_port));  // port 0
  EXPECT_FALSE(decode_dial_back_request(Bytes{0x90}));  // []
  EXPECT_FALSE(decode_dial_back_verdict(Bytes{0x03}));
  EXPECT_FALSE(decode_dial_back_verdict(Bytes{0xc3}));  // true
  EXPECT_FALSE(decode_dial_back_verdict(Bytes{0x91, 0x01}));
}

TEST(ValueStore, NewerWinsEverywhereAndBoundsHold) {
  DhtConfig cfg;
  cfg.max_values = 3;
  cfg.min_value_charge = 0;
  cfg.max_bytes = 1000;
  cfg.max_bytes_per_publisher = 300;
  cfg.min_value_charge = 0;  // sizes alone here (the minimum charge has its own test)
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  NodeId peer = contact_n(1).id, other = contact_n(2).id;
  Identity alice = identity_n(10);
  StoredValue a = value_of("a", Bytes(100, 1), 10, alice);
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kSame);
  StoredValue older = value_of("a", Bytes(100, 2), 9, alice);
  EXPECT_EQ(vs.store(older, peer), ValueStore::Result::kHeldNewer);
  StoredValue tie = value_of("a", Bytes(100, 3), 10, alice);
  bool tie_newer = ValueStore::newer(tie, a);
  EXPECT_EQ(vs.store(tie, peer), tie_newer ? ValueStore::Result::kStored : ValueStore::Result::kHeldNewer);
  EXPECT_NE(ValueStore::newer(tie, a), ValueStore::newer(a, tie));  // total order on ties
  StoredValue b = value_of("b", Bytes(150, 1), 10, alice);
  EXPECT_EQ(vs.store(b, peer), ValueStore::Result::kStored);
  StoredValue c = value_of("c", Bytes(100, 1), 10, alice);
  EXPECT_EQ(vs.store(c, peer), ValueStore::Result::kQuota);  // 250 + 100 > 300 for this peer
  EXPECT_EQ(vs.store(c, other), ValueStore::Result::kStored);
  StoredValue d = value_of("d", Bytes(10, 1), 10, alice);
  EXPECT_EQ(vs.store(d, other), ValueStore::Result::kFull);  // count bound
  StoredValue big = value_of("e", Bytes(kMaxValueSize + 1, 1), 10, alice);
  EXPECT_EQ(vs.store(big, other), ValueStore::Result::kTooLarge);
  // Expiry by version age.
  cfg.expire_after = std::chrono::microseconds(100);
  EXPECT_EQ(vs.expire(200), 3u);
  EXPECT_EQ(vs.count(), 0u);
}

TEST(ValueStore, OnlyTheOwnerReplacesItsValueAndForgeriesFailVerification) {
  DhtConfig cfg;
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  NodeId peer = contact_n(1).id;
  Identity alice = identity_n(10), mallory = identity_n(11);
  StoredValue honest = value_of("k", as_bytes_copy("honest"), 100, alice);
  ASSERT_EQ(vs.store(honest, peer), ValueStore::Result::kStored);
  // Mallory's own signed value, even far newer, never displaces Alice's.
  StoredValue rival = value_of("k", as_bytes_copy("rival"), 1'000'000, mallory);
  EXPECT_TRUE(verify_value(rival, 1));
  EXPECT_EQ(vs.store(rival, peer), ValueStore::Result::kOtherOwner);
  // A forgery claiming Alice's key does not verify (nor does her value replayed into another network or
  // under another key, or with its version bumped).
  StoredValue forged = rival;
  forged.owner = alice.public_key();
  EXPECT_FALSE(verify_value(forged, 1));
  EXPECT_FALSE(verify_value(honest, 2));
  StoredValue moved = honest;
  moved.key = dht_key("other");
  EXPECT_FALSE(verify_value(moved, 1));
  StoredValue bumped = honest;
  bumped.version += 1;
  EXPECT_FALSE(verify_value(bumped, 1));
  // Alice herself replaces it with a newer version.
  StoredValue update = value_of("k", as_bytes_copy("update"), 101, alice);
  EXPECT_EQ(vs.store(update, peer), ValueStore::Result::kStored);
  EXPECT_EQ(vs.get(update.key)->value, update.value);
  // Once it expired, the key is free for another owner.
  cfg.expire_after = std::chrono::microseconds(10);
  EXPECT_EQ(vs.expire(1000), 1u);
  EXPECT_EQ(vs.store(rival, peer), ValueStore::Result::kStored);
}

TEST(VerifiedValues, EachDistinctSignedValueIsVerifiedOnceAndNoAlteredCopyRidesOnIt) {
  Identity alice = identity_n(10);
  StoredValue honest = value_of("k", as_bytes_copy("honest"), 100, alice);
  size_t calls = 0;
  auto verify = [&](const StoredValue& v) {
    ++calls;
    return verify_value(v, 1);
  };
  VerifiedValues checked;
  // Twenty holders answer with the same signed bytes: one signature check.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(checked.check(honest, verify));
  EXPECT_EQ(calls, 1u);
  // Copies that keep the owner, version and signature but change anything signed are checked, and refused,
  // every time (a forgery never rides on the honest value's check, nor is it remembered).
  StoredValue altered = honest;
  altered.value = as_bytes_copy("altered");
  StoredValue moved = honest;
  moved.key = dht_key("other");
  StoredValue bumped = honest;
  bumped.version += 1;
  for (int round = 0; round < 2; ++round)
    for (auto* forged : {&altered, &moved, &bumped}) EXPECT_FALSE(checked.check(*forged, verify));
  EXPECT_EQ(calls, 1u + 6u);
  // Past its bound it stays right: the first kMax valid values are remembered, the others checked each time.
  std::vector<StoredValue> versions;
  for (uint64_t v = 1; v <= VerifiedValues::kMax + 2; ++v) versions.push_back(value_of("k", as_bytes_copy("v"), 100 + v, alice));
  calls = 0;
  for (int round = 0; round < 2; ++round)
    for (auto& v : versions) EXPECT_TRUE(checked.check(v, verify));
  EXPECT_EQ(calls, versions.size() + (versions.size() - (VerifiedValues::kMax - 1)));
}

TEST(ValueStore, EmptyValuesAreChargedAndPrefixQuotasHoldAgainstManyKeys) {
  DhtConfig cfg;
  cfg.min_value_charge = 256;
  cfg.max_bytes_per_publisher = 10 * 256;
  cfg.max_bytes_per_prefix = 25 * 256;
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  Identity owner = identity_n(10);
  Endpoint::Prefix hostile = Endpoint::v4(0x0b000001u, 1).prefix(), honest = Endpoint::v4(0x0c000001u, 1).prefix();
  // One peer: ten empty values, then its quota is spent even though they hold no bytes.
  size_t stored = 0;
  for (int i = 0; i < 20; ++i)
    stored += vs.store(value_of("e" + std::to_string(i), {}, 10, owner), contact_n(1).id, hostile) == ValueStore::Result::kStored;
  EXPECT_EQ(stored, 10u);
  // Many fresh peer keys from one /24: the prefix quota stops them at 25 values in all.
  size_t by_prefix = 0;
  ValueStore::Result last{};
  for (uint32_t p = 100; p < 200; ++p) {
    last = vs.store(value_of("p" + std::to_string(p), {}, 10, owner), contact_n(p).id, hostile);
    by_prefix += last == ValueStore::Result::kStored;
  }
  EXPECT_EQ(by_prefix, 15u);
  EXPECT_EQ(last, ValueStore::Result::kPrefixQuota);
  // A peer from another prefix is not affected.
  EXPECT_EQ(vs.store(value_of("h", as_bytes_copy("x"), 10, owner), contact_n(2).id, honest), ValueStore::Result::kStored);
}
