//! /proc/<pid>/mountinfo as a table keyed by mount id (the first field of each line), and the
//! difference of two reads: what a watcher that re-reads the file after each change needs.

use std::collections::HashMap;
use std::sync::Arc;

/// One read of a mountinfo file: its lines in file order, each found by its mount id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    lines: Vec<(u32, String)>,
    by_id: HashMap<u32, usize>,
}

impl Table {
    /// Splits a read into lines. A line whose first field is not a number is an error (the file
    /// is not a mountinfo file).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table = Table::default();
        for line in text.split('\n').filter(|line| !line.is_empty()) {
            let first = line.split(' ').next().unwrap_or_default();
            let id: u32 = first.parse().map_err(|_| {
                format!("a mountinfo line must start with a mount id, got {line:?}")
            })?;
            // A duplicate id cannot happen in one read; the later line would win.
            table.by_id.insert(id, table.lines.len());
            table.lines.push((id, line.to_owned()));
        }
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&str> {
        self.by_id
            .get(&id)
            .map(|&index| self.lines[index].1.as_str())
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|(_, line)| line.as_str())
    }
}

/// What changed from one table to the next.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Whole lines of the mounts that appeared, in the new file's order.
    pub added: Vec<String>,
    /// Ids of the mounts that are gone, in the old file's order.
    pub removed: Vec<u32>,
    /// Whole new lines of the mounts whose line differs, in the new file's order.
    pub changed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The changes that turn `old` into `new` (`None`: everything is added).
pub fn diff(old: Option<&Table>, new: &Table) -> Diff {
    let mut result = Diff::default();
    let Some(old) = old else {
        result.added = new.lines().map(str::to_owned).collect();
        return result;
    };
    for (id, line) in &new.lines {
        match old.get(*id) {
            None => result.added.push(line.clone()),
            Some(before) if before != line => result.changed.push(line.clone()),
            Some(_) => {}
        }
    }
    for (id, _) in &old.lines {
        if !new.by_id.contains_key(id) {
            result.removed.push(*id);
        }
    }
    result
}

/// A table shared between the reading thread and whoever diffs against it.
pub type SharedTable = Arc<Table>;

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw - sysfs sysfs rw
30 1 0:25 / /tmp rw - tmpfs tmpfs rw,size=100k
";

    #[test]
    fn parses_lines_by_their_first_field() {
        let table = Table::parse(BEFORE).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(23), Some("23 1 0:22 / /sys rw - sysfs sysfs rw"));
        assert_eq!(table.get(99), None);
        assert!(Table::parse("").unwrap().is_empty());
        assert!(
            Table::parse("x 1 0:1 / / rw - a b rw\n")
                .unwrap_err()
                .contains("mount id")
        );
    }

    #[test]
    fn first_diff_adds_every_line_in_file_order() {
        let table = Table::parse(BEFORE).unwrap();
        let first = diff(None, &table);
        assert_eq!(first.added.len(), 3);
        assert!(first.added[0].starts_with("22 "));
        assert!(first.added[2].starts_with("30 "));
        assert!(first.removed.is_empty() && first.changed.is_empty());
    }

    #[test]
    fn added_removed_and_changed_lines() {
        let old = Table::parse(BEFORE).unwrap();
        let new = Table::parse(
            "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 1 0:25 / /tmp ro - tmpfs tmpfs ro,size=100k
31 30 0:26 / /tmp/a rw - tmpfs tmpfs rw
",
        )
        .unwrap();
        let change = diff(Some(&old), &new);
        assert_eq!(
            change.added,
            vec!["31 30 0:26 / /tmp/a rw - tmpfs tmpfs rw"]
        );
        assert_eq!(change.removed, vec![23]);
        assert_eq!(
            change.changed,
            vec!["30 1 0:25 / /tmp ro - tmpfs tmpfs ro,size=100k"]
        );
        assert!(diff(Some(&new), &new).is_empty());
    }

    #[test]
    fn a_reused_id_with_another_line_is_a_change() {
        // Mount 30 unmounted and the id reused by another mount between two reads.
        let old = Table::parse("30 1 0:25 / /tmp rw - tmpfs tmpfs rw\n").unwrap();
        let new = Table::parse("30 1 0:40 / /mnt rw - tmpfs tmpfs rw\n").unwrap();
        let change = diff(Some(&old), &new);
        assert_eq!(change.changed.len(), 1);
        assert!(change.added.is_empty() && change.removed.is_empty());
    }
}
