//! Completion index sets of Indexed Jobs in the compact form `status.completedIndexes` uses:
//! ascending, comma-separated single indexes and `first-last` ranges (`"1,3-5,7"`).

use std::collections::BTreeSet;

/// A set of completion indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<i32>);

impl Indexes {
    /// Parses `status.completedIndexes`, keeping only indexes below `completions`. Malformed
    /// parts are skipped, as Kubernetes skips them, so a bad value can only lose progress,
    /// never wedge the Job.
    pub fn parse(s: &str, completions: i32) -> Indexes {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse::<i32>(), b.trim().parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            let last = last.min(completions.saturating_sub(1));
            for i in first.max(0)..=last {
                set.insert(i);
            }
        }
        Indexes(set)
    }

    pub fn insert(&mut self, i: i32) -> bool {
        self.0.insert(i)
    }

    pub fn contains(&self, i: i32) -> bool {
        self.0.contains(&i)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The indexes below `completions` not in the set, lowest first.
    pub fn missing(&self, completions: i32) -> impl Iterator<Item = i32> + '_ {
        (0..completions).filter(|i| !self.0.contains(i))
    }
}

impl std::fmt::Display for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ranges() {
        let set = Indexes::parse("1,3-5,7", 10);
        assert_eq!(set.len(), 5);
        assert!(set.contains(4));
        assert!(!set.contains(2));
        assert_eq!(set.to_string(), "1,3-5,7");
        let mut set = Indexes::default();
        for i in [5, 0, 2, 1, 6] {
            set.insert(i);
        }
        assert_eq!(set.to_string(), "0-2,5-6");
        assert_eq!(Indexes::default().to_string(), "");
    }

    #[test]
    fn bounds_and_junk() {
        // Indexes at or beyond `completions` are dropped (the Job was scaled down).
        assert_eq!(Indexes::parse("0-9", 3).to_string(), "0-2");
        assert_eq!(Indexes::parse("x,2,,4-a,1", 5).to_string(), "1-2");
        assert_eq!(
            Indexes::parse("1,3", 5).missing(5).collect::<Vec<_>>(),
            [0, 2, 4]
        );
    }
}
