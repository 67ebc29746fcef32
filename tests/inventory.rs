//! The inventory judged against the policy, end to end: `keydeck inventory` and
//! `keydeck review` against the seeded sandbox. Expected statuses come from the estate's
//! own data (`expect_status` in assets/estate.toml).

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use common::*;
use serde_json::Value;

fn keydeck_as(operator: &str, data_dir: &Path) -> Command {
    common::keydeck_as(operator, data_dir, &sandbox().regions.join(","))
}

fn inventory_json(operator: &str, extra: &[&str]) -> (i32, Value) {
    let d = temp_dir("inv");
    let out = keydeck_as(operator, &d).args(["inventory", "--format", "json"]).args(extra).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("json: {e}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().expect("code"), v)
}

/// `keydeck inventory --format json` as the key-auditor under the policy `toml`: exit
/// code and JSON.
fn inventory_under(toml: &str, extra: &[&str]) -> (i32, Value) {
    let d = temp_dir("inv");
    let policy = d.join("policy.toml");
    std::fs::write(&policy, toml).expect("write");
    let out = keydeck_as("key-auditor", &d)
        .arg("--policy")
        .arg(&policy)
        .args(["inventory", "--format", "json"])
        .args(extra)
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    (out.status.code().expect("code"), v)
}

fn item<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["items"].as_array().expect("items").iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("{name} missing"))
}

/// An estate entry's `replica_regions`.
fn regions_of(entry: &toml::Value) -> Vec<&str> {
    entry
        .get("replica_regions")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn every_seeded_item_has_the_status_the_estate_expects() {
    let raw: toml::Value = toml::from_str(keydeck::sandbox::ESTATE).expect("estate");
    let (code, v) = inventory_json("key-auditor", &[]);
    assert_eq!(code, 0, "without --check the exit code is 0");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{}", v["problems"]);
    for table in ["keys", "secrets"] {
        for it in raw[table].as_array().expect("array") {
            let name = it.get("alias").or(it.get("name")).and_then(|n| n.as_str()).expect("name");
            let want = it["expect_status"].as_str().expect("expect_status");
            let got = item(&v, name);
            assert_eq!(got["status"], want, "{name}: {}", got["reason"]);
        }
    }
    let all = v["items"].as_array().expect("items");
    let drift = v["drift"].as_array().expect("drift");
    for k in raw["keys"].as_array().expect("keys") {
        let alias = k["alias"].as_str().expect("alias");
        let region = k["region"].as_str().expect("region");
        // Imported material that expires: the expiry is shown, and is the Due date.
        if let Some(days) = k.get("material_expires_in_days").and_then(|d| d.as_integer()) {
            let it = item(&v, alias);
            let reason = it["reason"].as_str().unwrap_or("");
            assert!(
                reason.contains("imported key material expires") && reason.contains(&format!("(in {days} d")),
                "{alias}: {reason}"
            );
            let due: chrono::DateTime<Utc> = serde_json::from_value(it["due"].clone()).expect("due");
            assert!((due - (Utc::now() + Duration::days(days))).num_hours().abs() <= 25, "{alias}: due {due}");
        }
        // A multi-Region key's replicas: rows of their own, judged by the primary's rule,
        // labelled with it, never unmanaged drift of their own.
        let replica_regions = regions_of(k);
        assert_eq!(
            item(&v, alias)["replicas"]
                .as_array()
                .map(|r| r.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>())
                .unwrap_or_default(),
            replica_regions,
            "{alias}"
        );
        for r in &replica_regions {
            let label = format!("{alias} ({region})");
            let replica = all
                .iter()
                .find(|i| i["region"] == *r && i["replica_of"] == label.as_str())
                .unwrap_or_else(|| panic!("replica of {alias} in {r}"));
            let want = k["expect_replica_status"].as_str().expect("expect_replica_status");
            assert_eq!(replica["status"], want, "replica of {alias}: {}", replica["reason"]);
            assert_eq!(replica["name"], format!("{alias} (replica)"), "goes by its primary's name");
            assert!(replica["reason"].as_str().unwrap_or("").starts_with(&format!("replica of {label}: ")));
            assert!(!replica["action"].as_str().unwrap_or("").contains("deletion"), "{}", replica["action"]);
            assert!(!drift.iter().any(|d| d["drift"] == "unmanaged" && d["id"] == replica["id"]), "{drift:?}");
        }
    }
    // A replicated secret is one finding, in its primary Region, listing its replicas.
    for sec in raw["secrets"].as_array().expect("secrets") {
        let name = sec["name"].as_str().expect("name");
        let replicas = regions_of(sec);
        let rows: Vec<&Value> = all.iter().filter(|i| i["name"] == name).collect();
        assert_eq!(rows.len(), 1, "{name}: {rows:?}");
        assert_eq!(rows[0]["region"], sec["region"].as_str().expect("region"));
        let listed: Vec<&str> =
            rows[0]["replicas"].as_array().map(|r| r.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
        assert_eq!(listed, replicas, "{name}");
    }
    // What each of these items' reason must say.
    let says = |name: &str, what: &str| {
        let reason = item(&v, name)["reason"].as_str().unwrap_or_default().to_owned();
        assert!(reason.contains(what), "{name}: {what:?} not in {reason:?}");
    };
    // Rotation on, NextRotationDate passed: the rotation is failing.
    says("JWT_SECRET", "rotation failing");
    // A ScheduleExpression is compared with the rule.
    says("DATABASE_URL", "rotates every 120 d but the policy requires 90 d");
    // The pending-deletion key carries its date.
    let pending = item(&v, "drop-jwt-private-key");
    assert_eq!(pending["state"], "PendingDeletion");
    let when: chrono::DateTime<Utc> = serde_json::from_value(pending["deletion_date"].clone()).expect("deletion date");
    assert!((when - (Utc::now() + Duration::days(18))).num_hours().abs() <= 25, "{when}");
    says("drop-jwt-private-key", "pending deletion");
    // A key KMS cannot rotate is still judged by its rule's period, and says why.
    says("drop-field-hmac-key", "HMAC");
    // A value replaced by hand 10 days ago counts, not the creation 400 days ago.
    says("SUMSUB_WEBHOOK_SECRET", "value replaced outside rotation");
    says("SUMSUB_WEBHOOK_SECRET", "(10 d ago)");
    // A secret whose rotation is off says so.
    says("BANKID_CLIENT_SECRET", "rotation off");
    // Drift: the unmanaged scratch key and the policy's missing replica key.
    assert!(drift.iter().any(|d| d["drift"] == "unmanaged" && d["name"] == "scratch-test-key"), "{drift:?}");
    assert!(drift.iter().any(|d| d["drift"] == "missing" && d["name"] == "drop-backup-key-replica"), "{drift:?}");
    assert_eq!(v["check_failed"], true);
}

#[test]
fn check_exits_1_on_alerts_and_0_when_clean() {
    let (code, v) = inventory_json("key-auditor", &["--check"]);
    assert_eq!(code, 1);
    // The table says why, one line per finding, as the JSON's check_failures.
    let d = temp_dir("inv-table");
    let out = keydeck_as("key-auditor", &d).args(["inventory", "--check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let n = v["check_failures"].as_array().expect("check_failures").len();
    assert!(text.contains(&format!("--check failed ({n} finding(s)):")), "{text}");
    assert!(text.contains("  key drop-kyc-key (eu-north-1): Overdue"), "{text}");
    // A policy that governs only an item that is in order: --check passes.
    let (code, v) = inventory_under(
        "[policy]\nname = \"only s3\"\n[[keys]]\nname = \"trove-s3-sse-key\"\nowner = \"cto\"\nclassification = \"L3\"\nrotation = \"1y\"\nregions = [\"eu-west-1\"]\n",
        &["--check"],
    );
    assert_eq!(item(&v, "trove-s3-sse-key")["status"], "ok");
    assert_eq!(code, 0, "{}", v["summary"]);
}

#[test]
fn an_external_item_due_soon() {
    let today = Utc::now().date_naive();
    let (_, v) = inventory_under(
        &format!(
            "[policy]\nname = \"ext\"\ndue_soon = \"30d\"\n[[external]]\nname = \"TLS certificate (getdrop.no)\"\nexpires = \"{}\"\nalert_before = \"14d\"\n[[external]]\nname = \"FINA certificate\"\nexpires = \"{}\"\nalert_before = \"60d\"\n",
            today + chrono::Days::new(25),
            today + chrono::Days::new(50)
        ),
        &[],
    );
    let ext = v["external"].as_array().expect("external");
    let tls = ext.iter().find(|x| x["name"] == "TLS certificate (getdrop.no)").expect("tls");
    assert_eq!(tls["status"], "due_soon", "{}", tls["reason"]);
    let fina = ext.iter().find(|x| x["name"] == "FINA certificate").expect("fina");
    assert_eq!(fina["status"], "alert", "inside FINA's 60-day lead time: {}", fina["reason"]);
}

#[test]
fn partial_permissions_mark_cells_not_rows() {
    // on-call may list and describe keys but not read rotation status or tags.
    let (code, v) = inventory_json("on-call", &[]);
    assert_eq!(code, 0);
    let k = item(&v, "drop-db-master-key");
    assert_eq!(k["state"], "Enabled", "the row still loads");
    assert_eq!(k["status"], "unknown");
    assert!(k["reason"].as_str().unwrap_or("").contains("denied"), "{}", k["reason"]);
    // Items that need no denied call are still judged.
    assert_eq!(item(&v, "drop-field-hmac-key")["status"], "ok");
    assert_eq!(item(&v, "JWT_SECRET")["status"], "alert");
}

#[test]
fn review_lists_what_is_not_ok_with_rule_and_action() {
    let d = temp_dir("inv");
    let out = keydeck_as("key-auditor", &d).args(["review"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8(out.stdout).expect("utf8");
    assert!(md.starts_with("# Key review "), "{md}");
    assert!(md.contains("reviewer: `arn:aws:iam::123456789012:user/key-auditor`"));
    let attention = md.split("## Needs attention").nth(1).and_then(|s| s.split("\n## ").next()).expect("section");
    assert!(
        attention.contains("| ALERT | secret JWT_SECRET |") && attention.contains("alert after 3 d"),
        "{attention}"
    );
    assert!(attention.contains("| Overdue | key drop-kyc-key |"), "{attention}");
    assert!(!attention.contains("trove-s3-sse-key"), "OK items are not listed: {attention}");
    assert!(md.contains("drop-jwt-private-key (eu-north-1): deleted on"), "{md}");
    assert!(md.contains("drop-backup-key-replica is in the policy but was not found"), "{md}");
    let out = keydeck_as("key-auditor", &d).args(["review", "--format", "json"]).output().expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = v["findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["status"] != "ok" && f["status"] != "not_applicable"));
    assert!(findings
        .iter()
        .any(|f| f["name"] == "JWT_SECRET" && f["action"].as_str().unwrap_or("").contains("rotate")));
}

#[test]
fn a_rotation_period_binds_where_kms_cannot_rotate() {
    // The asymmetric anchor key (60 d old) and the HMAC key (300 d old) under rules that
    // set a period: overdue past it, with the manual rotation; n/a where the rule sets none.
    let (_, v) = inventory_under(
        "[policy]\nname = \"manual\"\n\
         [[keys]]\nname = \"keydeck-incident-anchor\"\nowner = \"sec\"\nclassification = \"L3\"\nrotation = \"30d\"\n\
         [[keys]]\nname = \"drop-field-hmac-key\"\nowner = \"sec\"\nclassification = \"L4\"\nrotation = \"90d\"\n\
         [[keys]]\nname = \"drop-jwt-private-key\"\nowner = \"sec\"\nclassification = \"L4\"\n",
        &[],
    );
    for name in ["keydeck-incident-anchor", "drop-field-hmac-key"] {
        let k = item(&v, name);
        assert_eq!(k["status"], "alert", "{name}: {}", k["reason"]);
        assert!(k["reason"].as_str().unwrap_or("").contains("KMS cannot rotate it automatically"), "{}", k["reason"]);
        assert!(
            k["action"].as_str().unwrap_or("").starts_with("rotate manually: create a new key and move the alias"),
            "{}",
            k["action"]
        );
    }
    assert_eq!(item(&v, "drop-jwt-private-key")["status"], "not_applicable");
}
