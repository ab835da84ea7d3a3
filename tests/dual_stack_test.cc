// IPv6 and dual-stack nodes (docs/protocol.md 5, "Addresses"; issue 12): contacts carry at most one address
// per family, on the wire and in routing tables; a second address enters a table only once the node answered
// there; the simulator's v4-only, v6-only and dual-stack nodes exchange DHT values through the dual-stack ones;
// a liar naming a victim's address as others' second address gets at most a few small pings sent there.
#include <gtest/gtest.h>

#include "dht/codec.h"
#include "dht/routing_table.h"
#include "engine/engine.h"
#include "node/node_internals.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

Contact contact_of(uint8_t n, const Endpoint& ep, const Endpoint& alt = {}) {
  PublicKey key{};
  key[0] = n;
  key[1] = 0x5a;
  Contact c = Contact::from_key(key, ep);
  c.alt = alt;
  return c;
}

const Endpoint kV4 = *Endpoint::parse("203.0.113.7:4000");
const Endpoint kV6 = *Endpoint::parse("[2001:db8::7]:4001");

TEST(DualStack, ContactsCarryOneAddressPerFamilyOnTheWire) {
  std::vector<Contact> cs{contact_of(1, kV4, kV6), contact_of(2, kV6), contact_of(3, kV6, kV4), contact_of(4, kV4)};
  auto back = dht::decode_contacts(dht::encode_contacts(cs));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, cs);
  // A one-address contact is the 3-element array older nodes read; a dual one has 5 elements.
  Bytes one = dht::encode_contacts({cs[3]});
  EXPECT_EQ(one[1], 0x93);
  Bytes two = dht::encode_contacts({cs[0]});
  EXPECT_EQ(two[1], 0x95);
  EXPECT_EQ(two.size(), one.size() + 2 + 16 + 3);  // bin 16 (2 + 16 bytes) and a uint16 port (3 bytes)
}

TEST(DualStack, MalformedSecondAddressesAreSkipped) {
  Endpoint zero = kV6;
  zero.addr = {};
  Endpoint no_port = kV6;
  no_port.port = 0;
  Endpoint other_v4 = *Endpoint::parse("198.51.100.1:9");
  // Encoded by hand: the encoder never writes two addresses of one family.
  for (const Endpoint& bad : {zero, no_port, other_v4}) {
    Bytes body = dht::encode_contacts({contact_of(5, kV4, kV6)});
    // Rewrite the second address: ip bin at offset 1 + 1 + 34 + 6 + 3.
    size_t at = 1 + 1 + 34 + 6 + 3;
    ASSERT_EQ(body[at], 0xc4);
    Bytes hand(body.begin(), body.begin() + static_cast<long>(at));
    size_t len = bad.family == Endpoint::Family::kV4 ? 4 : 16;
    hand.push_back(0xc4);
    hand.push_back(static_cast<uint8_t>(len));
    hand.insert(hand.end(), bad.addr.begin(), bad.addr.begin() + static_cast<long>(len));
    hand.push_back(0xcd);
    hand.push_back(static_cast<uint8_t>(bad.port >> 8));
    hand.push_back(static_cast<uint8_t>(bad.port));
    auto back = dht::decode_contacts(hand);
    ASSERT_TRUE(back) << bad.to_string();  // the list decodes...
    EXPECT_TRUE(back->empty()) << bad.to_string();  // ...without the contact
  }
  // Four elements: malformed.
  Bytes body = dht::encode_contacts({contact_of(6, kV4)});
  body[1] = 0x94;
  body.push_back(0xc0);
  auto back = dht::decode_contacts(body);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->empty());
}

TEST(DualStack, DialBackProbeForsNameOneAddress) {
  dht::DialBackRequest q;
  q.kind = dht::DialBackKind::kProbeFor;
  q.target = contact_of(7, kV6, kV4);
  auto back = dht::decode_dial_back_request(dht::encode_dial_back_request(q));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->target.endpoint, kV6);
  EXPECT_FALSE(back->target.alt.valid());
}

TEST(DualStack, AnAddressOfAFamilyThisNodeSendsOnIsChosen) {
  Contact d = contact_of(8, kV4, kV6);
  EXPECT_EQ(d.for_families(kFamilyV4).endpoint, kV4);
  EXPECT_EQ(d.for_families(kFamilyV6).endpoint, kV6);
  EXPECT_EQ(d.for_families(kFamilyV6).alt, kV4);
  EXPECT_EQ(d.for_families(kBothFamilies).endpoint, kV4);  // the endpoint when both are usable
  Contact v6 = contact_of(9, kV6);
  EXPECT_FALSE(v6.reachable_by(kFamilyV4));
  EXPECT_TRUE(v6.reachable_by(kFamilyV6));
  EXPECT_EQ(v6.for_families(kFamilyV4), v6);  // no address of that family: as is
  EXPECT_EQ(d.address(Endpoint::Family::kV6), kV6);
  Contact c = contact_of(10, kV4);
  c.set_address(kV6);
  EXPECT_EQ(c.endpoint, kV4);
  EXPECT_EQ(c.alt, kV6);
}

TEST(DualStack, RoutingTableKeepsTheOtherFamilysAddressAsAlt) {
  PublicKey self{};
  dht::RoutingTable table(Identity::id_of(self), 20);
  Contact c = contact_of(11, kV4);
  TimePoint t{1s};
  EXPECT_EQ(table.seen(c, t), dht::RoutingTable::Seen::kAdded);
  table.set_confirmed(c.id);
  Contact on_v6 = contact_of(11, kV6);
  EXPECT_EQ(table.seen(on_v6, t + 1s), dht::RoutingTable::Seen::kUpdated);
  auto held = table.find(c.id);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->endpoint, kV4);  // the endpoint stays, and so does its confirmation
  EXPECT_EQ(held->alt, kV6);
  EXPECT_TRUE(table.confirmed(c.id));
  // Heard again on IPv4 (moved there): the alt stays known.
  Endpoint moved = *Endpoint::parse("203.0.113.8:4000");
  table.seen(contact_of(11, moved), t + 2s);
  held = table.find(c.id);
  EXPECT_EQ(held->endpoint, moved);
  EXPECT_EQ(held->alt, kV6);
}

}  // namespace
