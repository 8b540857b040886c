//! The mount APIs against the host kernel (listmount/statmount need Linux 6.8+; the mountinfo
//! watch works on any kernel). Mount changes are tested from JS (test/mounts.test.ts), in a
//! namespace of their own: a test binary's threads cannot unshare(CLONE_NEWNS).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use mountapi::mountinfo::Table;
use mountapi::statfs::statfs_now;
use mountapi::{
    MountinfoWatch, Reread, STATMOUNT_WANTED, list_kernel_mounts, stat_kernel_mount, statfs_path,
    support,
};

fn mountinfo_ids() -> BTreeSet<u32> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .map(|line| line.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn listmount_and_statmount_see_the_mounts_mountinfo_shows() {
    if !support().listmount {
        eprintln!("no listmount on this kernel: nothing to compare");
        return;
    }
    // The host's table may change meanwhile; retry a few times until two reads agree.
    for attempt in 0..5 {
        let before = mountinfo_ids();
        let mounts = list_kernel_mounts(STATMOUNT_WANTED).unwrap();
        let after = mountinfo_ids();
        if before != after && attempt < 4 {
            continue;
        }
        let ids: BTreeSet<u32> = mounts.iter().map(|m| m.id.unwrap()).collect();
        assert_eq!(ids, after);
        let first = &mounts[0];
        let again = stat_kernel_mount(first.unique_id.unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(&again, first);
        return;
    }
}

#[test]
fn statfs_of_proc_is_proc_super_magic() {
    let proc = statfs_now(Path::new("/proc")).unwrap();
    assert_eq!(proc.fs_type, 0x9fa0);
    let error = statfs_now(Path::new("/nonexistent")).unwrap_err();
    assert_eq!(error.code(), "ENOENT");
}

#[tokio::test]
async fn statfs_on_a_thread_and_mountinfo_watch_first_batch_and_close() {
    let root = statfs_path("/".into(), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(root.blocks > 0);

    let watch = MountinfoWatch::open(Path::new("/proc/self/mountinfo")).unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(first.lines, first.diff.added.len());
    let table = Table::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap()).unwrap();
    // The host's table may have changed since; the size is close either way.
    assert!(first.lines.abs_diff(table.len()) < 10);
    watch.close();
    assert_eq!(watch.next().await.unwrap(), None);
}

#[tokio::test]
async fn mountinfo_watch_on_request_reads_when_asked() {
    let watch =
        MountinfoWatch::open_with(Path::new("/proc/self/mountinfo"), Reread::OnRequest).unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert!(first.reread);
    assert_eq!((first.generation, first.wakeups), (1, 0));
    assert_eq!(first.lines, first.diff.added.len());
    // Nothing to say until asked (the host's table may change meanwhile: then wakeups come).
    watch.request_read();
    watch.request_read();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let batch = watch.next().await.unwrap().unwrap();
            if batch.reread {
                return batch;
            }
            assert!(batch.wakeups > 0 && batch.diff.is_empty());
        }
    })
    .await
    .expect("a read within 5 s");
    assert!(answer.generation >= 1);
    watch.close();
    watch.request_read();
    assert_eq!(watch.next().await.unwrap(), None);
}
