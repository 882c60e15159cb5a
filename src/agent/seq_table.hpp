#pragma once
/// Where the UDP and ICMP probers look up an answer's sequence number: the probe in flight that
/// waits for it (SeqTable) and the task of a recently answered one (RecentSeqs, to recognise
/// duplicates). Both are flat arrays indexed by the sequence's low bits: one memory access per
/// answer, no hashing and no allocation per probe. Pure logic, not thread-safe.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pingmesh::agent {

/// Sequence -> probe slot, for the probes in flight. The prober hands out sequences in order and
/// skips one whose cell is taken (claim() says so), so every live sequence has a cell of its
/// own: no collisions to resolve, and a lookup reads one cell. The table starts small and
/// doubles (up to `max_cells`) once it is half full; doubling never makes two live sequences
/// share a cell, since they would have shared one before.
class SeqTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  /// `max_cells`: a power of two; 65536 for 16-bit (ICMP) sequences, whose wrap must not change
  /// the cell.
  explicit SeqTable(std::size_t max_cells = 65536, std::size_t initial_cells = 256)
      : max_cells_(max_cells),
        initial_cells_(initial_cells < max_cells ? initial_cells : max_cells) {}

  /// Records `value` (a probe slot, not kNone) for `seq`. False when the cell is taken by another
  /// live sequence and the table cannot grow: the caller takes the next sequence.
  bool claim(uint32_t seq, uint32_t value) {
    if (cells_.empty()) cells_.resize(initial_cells_);
    if ((live_ + 1) * 2 > cells_.size() && cells_.size() < max_cells_) grow();
    Cell& c = cells_[seq & (cells_.size() - 1)];
    if (c.value != kNone) return false;
    c = {seq, value};
    ++live_;
    return true;
  }

  /// The value recorded for `seq`, or kNone.
  uint32_t find(uint32_t seq) const {
    if (cells_.empty()) return kNone;
    const Cell& c = cells_[seq & (cells_.size() - 1)];
    return c.value != kNone && c.seq == seq ? c.value : kNone;
  }

  /// Forgets `seq` if it is recorded with `value` (so a stale sequence never frees the cell of a
  /// live probe).
  void release(uint32_t seq, uint32_t value) {
    if (cells_.empty()) return;
    Cell& c = cells_[seq & (cells_.size() - 1)];
    if (c.value == value && c.seq == seq) {
      c.value = kNone;
      --live_;
    }
  }

  std::size_t size() const { return live_; }
  std::size_t cells() const { return cells_.size(); }
  std::size_t max_cells() const { return max_cells_; }

 private:
  struct Cell {
    uint32_t seq = 0;
    uint32_t value = kNone;
  };

  void grow() {
    std::vector<Cell> bigger(cells_.size() * 2);
    for (const Cell& c : cells_) {
      if (c.value != kNone) bigger[c.seq & (bigger.size() - 1)] = c;
    }
    cells_.swap(bigger);
  }

  std::size_t max_cells_;
  std::size_t initial_cells_;
  std::vector<Cell> cells_;
  std::size_t live_ = 0;
};

/// The task of each recently answered sequence, kept until a sequence `kCells` later (in the
/// same cell) is answered: a duplicate of an answer is recognised for that long.
class RecentSeqs {
 public:
  static constexpr std::size_t kCells = 8192;

  void add(uint32_t seq, uint64_t task) {
    if (cells_.empty()) cells_.resize(kCells);
    cells_[seq & (kCells - 1)] = {seq, task};
  }

  /// The task answered with this sequence, or 0.
  uint64_t find(uint32_t seq) const {
    if (cells_.empty()) return 0;
    const Cell& c = cells_[seq & (kCells - 1)];
    return c.seq == seq ? c.task : 0;
  }

 private:
  struct Cell {
    uint32_t seq = 0;
    uint64_t task = 0;  // 0: empty (task ids start at 1)
  };
  std::vector<Cell> cells_;
};

}  // namespace pingmesh::agent
