//! Unit tests of `snapshot`.

use super::*;

fn sample() -> Snapshot {
    let mut s = Snapshot {
        schema: SCHEMA,
        dnsdoc_version: "test".into(),
        ..Default::default()
    };
    s.totals.counts.queries = 42;
    s.totals.counts.rcodes.add(3);
    s.latency.p99_ms = Some(12.5);
    s
}

#[test]
fn atomic_write_round_trips_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    sample().write_atomic(&path).unwrap();
    assert_eq!(Snapshot::read(&path).unwrap(), sample());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s.json")]);
}

#[test]
fn a_device_is_written_in_place_not_replaced() {
    sample().write_atomic(Path::new("/dev/null")).unwrap();
    let m = fs::metadata("/dev/null").unwrap();
    assert!(!m.is_file(), "-o /dev/null must not replace the device");
}

#[test]
fn rcode_names_serialize_as_documented() {
    let v = serde_json::to_value(sample()).unwrap();
    assert_eq!(v["totals"]["queries"], 42);
    assert_eq!(v["totals"]["rcodes"]["NXDOMAIN"], 1);
    assert_eq!(v["latency"]["p99_ms"], 12.5);
    assert!(v["latency"]["p50_ms"].is_null());
}

#[test]
fn schema_1_snapshots_are_still_read_without_pods_or_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let mut v = serde_json::to_value(sample()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("schema".into(), 1.into());
    o.remove("pods");
    o.remove("lookups");
    std::fs::write(&path, v.to_string()).unwrap();
    let s = Snapshot::read(&path).unwrap();
    assert_eq!(s.schema, 1);
    assert!(s.pods.is_empty());
    assert_eq!(s.lookups, LookupSummary::default());
    assert_eq!(s.totals.counts.queries, 42);
}

#[test]
fn schema_2_snapshots_are_still_read_without_domains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let mut v = serde_json::to_value(sample()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("schema".into(), 2.into());
    assert!(o.remove("domains").is_some(), "schema 3 writes domains");
    std::fs::write(&path, v.to_string()).unwrap();
    let s = Snapshot::read(&path).unwrap();
    assert_eq!(s.schema, 2);
    assert_eq!(s.domains, DomainSummary::default());
    assert_eq!(s.totals.counts.queries, 42);
}

#[test]
fn other_schema_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let mut s = sample();
    s.schema = 99;
    s.write_atomic(&path).unwrap();
    let err = Snapshot::read(&path).unwrap_err().to_string();
    assert!(err.contains("schema 99 is not supported"), "{err}");
}
