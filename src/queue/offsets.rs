//! Which offsets of each partition are in flight, so the committed position
//! never passes a message whose outcome is not yet durable. Pure bookkeeping:
//! the Kafka consumer calls `begin` on receipt and `done` on acknowledgement,
//! and stores the position `done` returns.
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(crate) struct Offsets {
    partitions: HashMap<(String, i32), Partition>,
}

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    highest: i64,
    stored: i64,
}

impl Offsets {
    pub(crate) fn begin(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| Partition { pending: BTreeSet::new(), highest: offset - 1, stored: offset - 1 });
        p.pending.insert(offset);
        p.highest = p.highest.max(offset);
    }

    /// Marks `offset` done; returns the last offset whose predecessors are all
    /// done, when it moved forward (the position to store).
    pub(crate) fn done(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&(topic.to_string(), partition))?;
        p.pending.remove(&offset);
        let watermark = match p.pending.first() {
            Some(&lowest) => lowest - 1,
            None => p.highest,
        };
        (watermark > p.stored).then(|| {
            p.stored = watermark;
            watermark
        })
    }

    /// Forgets partitions this consumer no longer owns (after a rebalance).
    pub(crate) fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    #[test]
    fn the_stored_position_never_passes_an_unfinished_offset() {
        let mut o = Offsets::default();
        for off in 10..15 {
            o.begin("t", 0, off);
        }
        assert_eq!(o.done("t", 0, 12), None, "10 and 11 are still running");
        assert_eq!(o.done("t", 0, 10), Some(10));
        assert_eq!(o.done("t", 0, 11), Some(12), "12 was already done");
        assert_eq!(o.done("t", 0, 14), None);
        assert_eq!(o.done("t", 0, 13), Some(14));
        assert!(o.partitions.values().all(|p| p.pending.is_empty()));
    }

    #[test]
    fn partitions_are_independent_and_revocable() {
        let mut o = Offsets::default();
        o.begin("t", 0, 5);
        o.begin("t", 1, 7);
        assert_eq!(o.done("t", 1, 7), Some(7));
        o.revoke("t", 0);
        assert_eq!(o.done("t", 0, 5), None, "a revoked partition is not stored");
    }
}
