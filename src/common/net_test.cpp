#include "common/net.hpp"

#include <gtest/gtest.h>

using pingmesh::net::Cidr;
using pingmesh::net::IpAddress;

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto a = IpAddress::parse("10.1.2.3");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->to_string(), "10.1.2.3");
  auto b = IpAddress::parse("FD00:0:0::1");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->is_v6());
  EXPECT_EQ(b->to_string(), "fd00::1");
  EXPECT_FALSE(IpAddress::parse("10.1.2"));
  EXPECT_FALSE(IpAddress::parse("10.1.2.256"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("fd00:::1"));
}

TEST(Cidr, ContainsAndRejectsHostBits) {
  auto c = Cidr::parse("10.1.0.0/24");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*IpAddress::parse("10.1.0.200")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("10.1.1.1")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("fd00::1")));
  EXPECT_FALSE(Cidr::parse("10.1.0.1/24"));
  EXPECT_TRUE(Cidr::parse("10.1.0.1/24", true));
  EXPECT_FALSE(Cidr::parse("10.1.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.1.0.0"));
  auto v6 = Cidr::parse("fd00:1::/64");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("fd00:1::abcd")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("fd00:2::1")));
  EXPECT_EQ(v6->to_string(), "fd00:1::/64");
}

TEST(Cidr, Overlaps) {
  EXPECT_TRUE(Cidr::parse("10.0.0.0/8")->overlaps(*Cidr::parse("10.1.0.0/16")));
  EXPECT_FALSE(Cidr::parse("10.1.0.0/16")->overlaps(*Cidr::parse("10.2.0.0/16")));
  EXPECT_FALSE(Cidr::parse("10.1.0.0/16")->overlaps(*Cidr::parse("fd00::/8")));
}
