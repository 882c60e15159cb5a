#include "agent/schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace pingmesh::agent {
namespace {

model::PinglistEntry entry(int i, uint32_t interval_ms = 10000,
                           model::Protocol proto = model::Protocol::kTcp) {
  model::PinglistEntry e;
  e.target = "srv" + std::to_string(i);
  e.address =
      *net::IpAddress::parse("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1));
  e.protocol = proto;
  e.port = proto == model::Protocol::kIcmp ? 0 : 9001;
  e.interval_ms = interval_ms;
  return e;
}

std::vector<model::PinglistEntry> entries(int n, uint32_t interval_ms = 10000) {
  std::vector<model::PinglistEntry> v;
  for (int i = 0; i < n; ++i) v.push_back(entry(i, interval_ms));
  return v;
}

ScheduleOptions unlimited() {
  ScheduleOptions o;
  o.max_rate = 0;
  o.max_inflight = 1000000;
  o.slot_us = 1000;
  return o;
}

/// Runs the scheduler slot by slot from `from` to `to` (an injected clock) and returns the
/// fire times per task id.
std::map<uint64_t, std::vector<int64_t>> run(Scheduler& s, int64_t from, int64_t to) {
  std::map<uint64_t, std::vector<int64_t>> fires;
  std::vector<const ProbeTask*> due;
  for (int64_t now = from; now <= to; now += s.options().slot_us) {
    due.clear();
    s.take_due(now, 0, &due);
    for (auto* t : due) fires[t->id].push_back(now);
  }
  return fires;
}

TEST(Schedule, SpreadsProbesEvenlyOverTheInterval) {
  Scheduler s(unlimited());
  s.apply(entries(1000), 0);
  auto fires = run(s, 0, 10'000'000);
  // Count first-cycle fires per 1 s bucket: 1000 tasks over 10 s = ~100 per bucket.
  std::vector<int> buckets(10);
  for (const auto& [id, times] : fires) {
    ASSERT_FALSE(times.empty());
    buckets[std::min<int64_t>(times.front() / 1'000'000, 9)]++;
  }
  for (int b : buckets) {
    EXPECT_GT(b, 60) << "probes bunch";
    EXPECT_LT(b, 140) << "probes bunch";
  }
  // No slot fires more than a handful of probes (1000 tasks over 10,000 slots).
  std::map<int64_t, int> per_slot;
  for (const auto& [id, times] : fires)
    for (auto t : times) per_slot[t]++;
  int worst = 0;
  for (auto& [t, n] : per_slot) worst = std::max(worst, n);
  EXPECT_LE(worst, 6);
}

TEST(Schedule, EachTaskFiresOncePerIntervalWithBoundedJitter) {
  ScheduleOptions o = unlimited();
  o.jitter_fraction = 0.05;
  Scheduler s(o);
  s.apply(entries(50), 0);
  auto fires = run(s, 0, 100'000'000);
  for (const auto& [id, times] : fires) {
    ASSERT_GE(times.size(), 9u);
    ASSERT_LE(times.size(), 11u);
    for (std::size_t i = 1; i < times.size(); ++i) {
      int64_t gap = times[i] - times[i - 1];
      EXPECT_GE(gap, 9'000'000 - 1000) << "jitter beyond 5% + a slot";
      EXPECT_LE(gap, 11'000'000 + 1000);
    }
  }
}

TEST(Schedule, PhaseIsDeterministicPerAgentSeed) {
  ScheduleOptions a = unlimited();
  a.seed = 1;
  Scheduler s1(a), s2(a);
  s1.apply(entries(20), 0);
  s2.apply(entries(20), 0);
  auto f1 = run(s1, 0, 10'000'000), f2 = run(s2, 0, 10'000'000);
  EXPECT_EQ(f1, f2);
  a.seed = 2;
  Scheduler s3(a);
  s3.apply(entries(20), 0);
  EXPECT_NE(run(s3, 0, 10'000'000), f1);
}

TEST(Schedule, MinimumIntervalAndPayloadAreEnforced) {
  Scheduler s(unlimited());
  auto v = entries(3, 100);  // asks for 100 ms
  v[0].payload_bytes = 1 << 20;
  ApplyStats st = s.apply(v, 0);
  EXPECT_EQ(st.clamped_interval, 3u);
  EXPECT_EQ(st.clamped_payload, 1u);
  auto fires = run(s, 0, 30'000'000);
  for (const auto& [id, times] : fires) EXPECT_LE(times.size(), 3u);
  EXPECT_EQ(s.find(fires.begin()->first)->entry.interval_ms, 10000u);
}

TEST(Schedule, LabOverrideLowersTheFloor) {
  ScheduleOptions o = unlimited();
  o.min_interval_ms = 100;
  Scheduler s(o);
  ApplyStats st = s.apply(entries(2, 100), 0);
  EXPECT_EQ(st.clamped_interval, 0u);
  auto fires = run(s, 0, 1'000'000);
  for (const auto& [id, times] : fires) EXPECT_GE(times.size(), 9u);
}

TEST(Schedule, RateCapDefersWithoutCatchUpBurst) {
  ScheduleOptions o = unlimited();
  o.max_rate = 50;  // 1000 tasks / 10 s would be 100/s
  Scheduler s(o);
  s.apply(entries(1000), 0);
  std::vector<const ProbeTask*> due;
  std::map<int64_t, int> per_second;
  for (int64_t now = 0; now <= 20'000'000; now += 1000) {
    due.clear();
    s.take_due(now, 0, &due);
    per_second[now / 1'000'000] += static_cast<int>(due.size());
  }
  EXPECT_EQ(s.rate_burst(), 5.0);  // 100 ms of 50/s
  // Only the first second may use the full bucket on top of the rate.
  for (auto& [sec, n] : per_second) EXPECT_LE(n, sec == 0 ? 55 : 51) << "second " << sec;
  EXPECT_GT(s.limit_hits().rate, 0u);
}

/// Probes started per slot under a cap, with `tasks` tasks of 1 s (lab floor) over `seconds`.
std::vector<int> fire_counts(ScheduleOptions o, int tasks, int seconds) {
  o.min_interval_ms = 1000;
  Scheduler s(o);
  s.apply(entries(tasks, 1000), 0);
  std::vector<int> per_slot;
  std::vector<const ProbeTask*> due;
  for (int64_t now = 0; now <= int64_t{seconds} * 1'000'000; now += o.slot_us) {
    due.clear();
    s.take_due(now, 0, &due);
    per_slot.push_back(static_cast<int>(due.size()));
  }
  return per_slot;
}

TEST(Schedule, RateCapDoesNotHoldBackASpreadLoadBelowIt) {
  ScheduleOptions o = unlimited();
  o.slot_us = 2000;
  o.max_rate = 1000;
  for (int tasks : {320, 800}) {
    o.min_interval_ms = 1000;
    Scheduler s(o);
    s.apply(entries(tasks, 1000), 0);
    std::vector<const ProbeTask*> due;
    std::size_t fired = 0;
    for (int64_t now = 0; now <= 20'000'000; now += o.slot_us) {
      due.clear();
      s.take_due(now, 0, &due);
      fired += due.size();
    }
    EXPECT_EQ(s.limit_hits().rate, 0u) << tasks << " probes/s under a cap of 1000/s";
    EXPECT_GE(fired, static_cast<std::size_t>(tasks) * 19) << tasks;
  }
  // The former bucket of one 2 ms slot (2 probes) held probes back at a third of the cap,
  // whenever three probes of a random spread fell into one slot.
  o.rate_burst_ms = 0;
  o.min_interval_ms = 1000;
  Scheduler one_slot(o);
  EXPECT_EQ(one_slot.rate_burst(), 2.0);
  one_slot.apply(entries(320, 1000), 0);
  std::vector<const ProbeTask*> due;
  for (int64_t now = 0; now <= 20'000'000; now += o.slot_us) {
    due.clear();
    one_slot.take_due(now, 0, &due);
  }
  EXPECT_GT(one_slot.limit_hits().rate, 0u);
}

TEST(Schedule, RateCapBurstIsBoundedByItsBucket) {
  ScheduleOptions o = unlimited();
  o.slot_us = 2000;
  o.max_rate = 1000;
  o.rate_burst_ms = 100;
  auto per_slot = fire_counts(o, 5000, 10);  // 5x the cap
  // Over any window of W ms at most (100 + W) probes; the sustained rate is the cap.
  for (int window_slots : {1, 50, 500}) {
    int sum = 0, worst = 0;
    for (std::size_t i = 0; i < per_slot.size(); ++i) {
      sum += per_slot[i];
      if (i >= static_cast<std::size_t>(window_slots)) sum -= per_slot[i - window_slots];
      worst = std::max(worst, sum);
    }
    EXPECT_LE(worst, 100 + window_slots * 2 + 1) << "window of " << window_slots * 2 << " ms";
  }
  int total = 0;
  for (int n : per_slot) total += n;
  EXPECT_GE(total, 10'000 - 10);
  EXPECT_LE(total, 10'000 + 100 + 2);
}

TEST(Schedule, InflightCapHoldsProbesBack) {
  ScheduleOptions o = unlimited();
  o.max_inflight = 5;
  Scheduler s(o);
  s.apply(entries(100, 10000), 0);
  std::vector<const ProbeTask*> due;
  s.take_due(20'000'000, 3, &due);  // everything is due; 3 already in flight
  EXPECT_EQ(due.size(), 2u);
  EXPECT_GT(s.limit_hits().inflight, 0u);
  EXPECT_EQ(s.next_wake_us(20'000'000, 5), 20'001'000);  // retry at the next slot
}

TEST(Schedule, ApplyKeepsPhasesOfUnchangedTasks) {
  Scheduler s(unlimited());
  auto v = entries(10);
  s.apply(v, 0);
  run(s, 0, 5'000'000);
  std::map<std::string, std::pair<uint64_t, int64_t>> state;
  for (uint64_t id = 1; id <= 10; ++id) {
    const ProbeTask* t = s.find(id);
    ASSERT_NE(t, nullptr);
    state[Scheduler::task_key(t->entry)] = {t->id, t->next_due_us};
  }
  // New version: drop srv0, add srv10, change labels of srv1 (not its schedule).
  v.erase(v.begin());
  v.push_back(entry(10));
  v[0].dst_rack = "moved";
  ApplyStats st = s.apply(v, 5'000'000);
  EXPECT_EQ(st.added, 1u);
  EXPECT_EQ(st.removed, 1u);
  EXPECT_EQ(st.kept, 9u);
  for (const auto& e : v) {
    auto it = state.find(Scheduler::task_key(e));
    if (it == state.end()) continue;
    const ProbeTask* t = s.find(it->second.first);
    ASSERT_NE(t, nullptr) << e.target;
    EXPECT_EQ(t->next_due_us, it->second.second) << e.target << " lost its phase";
  }
  EXPECT_EQ(s.find(state[Scheduler::task_key(v[0])].first)->peer->rack, "moved");
}

TEST(Schedule, ClearStopsEverything) {
  Scheduler s(unlimited());
  s.apply(entries(10), 0);
  s.clear();
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.next_wake_us(0, 0), Scheduler::kNever);
  EXPECT_TRUE(run(s, 0, 20'000'000).empty());
}

// The kill switch (Engine: scheduler.clear()) must also drop probes the rate and in-flight caps
// were holding back: none of them may start after the stop, and a resume starts afresh.
TEST(Schedule, ClearDropsProbesHeldBackByTheCaps) {
  ScheduleOptions o = unlimited();
  o.max_rate = 50;
  o.max_inflight = 20;
  Scheduler s(o);
  s.apply(entries(1000), 0);
  std::vector<const ProbeTask*> due;
  s.take_due(20'000'000, 0, &due);  // all 1000 due; the caps let a handful through
  ASSERT_LT(due.size(), 20u);
  ASSERT_GT(s.limit_hits().rate, 0u);
  due.clear();
  s.take_due(20'001'000, 20, &due);  // one slot later, the in-flight cap is full
  ASSERT_GT(s.limit_hits().inflight, 0u);
  ASSERT_NE(s.next_wake_us(20'001'000, 0), Scheduler::kNever) << "probes are held back";

  s.clear();
  EXPECT_EQ(s.next_wake_us(20'001'000, 0), Scheduler::kNever);
  due.clear();
  for (int64_t now = 20'002'000; now <= 60'000'000; now += 1000) s.take_due(now, 0, &due);
  EXPECT_TRUE(due.empty()) << due.size() << " probes started after clear()";

  s.apply(entries(10), 60'000'000);  // resume
  EXPECT_EQ(run(s, 60'000'000, 71'000'000).size(), 10u);  // one interval + jitter
}

TEST(Schedule, WakeUpsAreRoundedToSlots) {
  ScheduleOptions o = unlimited();
  o.slot_us = 2000;
  Scheduler s(o);
  s.apply(entries(200), 0);
  int64_t t = s.next_wake_us(0, 0);
  EXPECT_EQ(t % 2000, 0);
  EXPECT_EQ(s.slot_ceil(2001), 4000);
  EXPECT_EQ(s.slot_ceil(4000), 4000);
}

TEST(Schedule, AgentsSharingAClockWakeAtDifferentSlotOffsets) {
  // Agents on one machine (the namespace lab) share its monotonic clock: with one slot grid for
  // all, every agent would wake, send and read at the same instants and delay each other's
  // responders. Each agent's grid is shifted by a hash of its seed.
  ScheduleOptions o = unlimited();
  o.slot_us = 50000;
  std::set<int64_t> offsets;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    o.seed = seed;
    Scheduler s(o);
    int64_t off = s.slot_offset_us();
    EXPECT_GE(off, 0);
    EXPECT_LT(off, 50000);
    offsets.insert(off);
    // Still one wake-up per slot, on this agent's grid.
    EXPECT_EQ(s.slot_ceil(1'000'000 + off), 1'000'000 + off);
    EXPECT_EQ(s.slot_ceil(1'000'001 + off), 1'050'000 + off);
    EXPECT_EQ((s.slot_ceil(1'234'567) - off) % 50000, 0);
    EXPECT_GE(s.slot_ceil(1'234'567), 1'234'567);
    EXPECT_LT(s.slot_ceil(1'234'567), 1'234'567 + 50000);
  }
  EXPECT_GE(offsets.size(), 7u) << "8 agents, (nearly) 8 different offsets";
}

}  // namespace
}  // namespace pingmesh::agent
