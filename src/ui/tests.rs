//! Whole-console snapshots with ratatui's `TestBackend` and `insta`.

use chrono::{TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::app::{update, Msg, Session, State};
use crate::domain::identity::CallerIdentity;
use crate::domain::inventory::fixtures::{key, secret};
use crate::domain::inventory::{Inventory, KeyState, RegionInventory};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 42).single().expect("valid date")
}

fn state(write: bool) -> State {
    let session = Session {
        identity: CallerIdentity {
            arn: "arn:aws:iam::123456789012:user/key-admin".into(),
            account: "123456789012".into(),
            user_id: "AIDAKEYADMIN".into(),
        },
        regions: vec!["eu-north-1".into(), "eu-west-1".into()],
        profile: None,
        endpoint: Some("http://127.0.0.1:4566".into()),
        write_enabled: write,
        policy_name: "<embedded assets/policy.toml>".into(),
        data_dir: "/home/op/.local/share/keydeck".into(),
        log_file: "/home/op/.local/share/keydeck/keydeck.log".into(),
    };
    let mut s = State::new(session, now(), false);
    let mut pending = key("eu-north-1", "drop-jwt-private-key", KeyState::PendingDeletion);
    pending.spec = "RSA_2048".into();
    pending.usage = "SIGN_VERIFY".into();
    pending.deletion_date = Utc.with_ymd_and_hms(2026, 12, 11, 0, 0, 0).single();
    let mut evil = key("eu-north-1", "scratch\x1b[2Jkey", KeyState::Enabled);
    evil.problem = Some("DescribeKey denied".into());
    let inv = Inventory {
        regions: vec![
            RegionInventory {
                region: "eu-north-1".into(),
                keys: vec![
                    key("eu-north-1", "drop-national-id-key", KeyState::Enabled),
                    key("eu-north-1", "drop-kyc-key", KeyState::Enabled),
                    pending,
                    evil,
                ],
                secrets: vec![
                    secret("eu-north-1", "JWT_SECRET", Some(90)),
                    secret("eu-north-1", "BANKID_CLIENT_SECRET", None),
                ],
                problems: vec![],
            },
            RegionInventory {
                region: "eu-west-1".into(),
                keys: vec![
                    key("eu-west-1", "drop-backup-key", KeyState::Enabled),
                    key("eu-west-1", "trove-oauth-token-key-2023", KeyState::Disabled),
                ],
                secrets: vec![],
                problems: vec![],
            },
        ],
        fetched_at: Some(now() - chrono::Duration::seconds(12)),
    };
    update(&mut s, Msg::InventoryLoaded(inv));
    s
}

fn render(s: &mut State, w: u16, h: u16) -> String {
    update(s, Msg::Resize(w, h));
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    t.draw(|f| super::draw(f, s)).expect("draw");
    format!("{}", t.backend())
}

fn press(s: &mut State, code: KeyCode) {
    update(s, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

#[test]
fn inventory_80x24() {
    insta::assert_snapshot!(render(&mut state(false), 80, 24));
}

#[test]
fn inventory_wide_with_write_badge() {
    insta::assert_snapshot!(render(&mut state(true), 120, 20));
}

#[test]
fn help_overlay() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&mut s, 80, 30));
}

#[test]
fn palette() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char(':'));
    press(&mut s, KeyCode::Char('s'));
    insta::assert_snapshot!(render(&mut s, 100, 16));
}

#[test]
fn filter_and_session_view() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char('/'));
    for c in "west".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    insta::assert_snapshot!("filter", render(&mut s, 80, 16));
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Char('2'));
    insta::assert_snapshot!("session", render(&mut s, 90, 20));
}

#[test]
fn too_small() {
    insta::assert_snapshot!(render(&mut state(false), 40, 10));
}

#[test]
fn escape_sequences_from_aws_are_inert() {
    let out = render(&mut state(false), 120, 20);
    assert!(!out.contains('\x1b'), "raw ESC reached the screen");
    assert!(out.contains("scratch\\e[2Jkey"), "{out}");
}

#[test]
fn error_status_line() {
    let mut s = state(false);
    let mut inv = s.inventory.clone().expect("loaded");
    inv.regions[1].problems.push(
        "kms:ListKeys in eu-west-1 failed: access denied (AccessDeniedException) — your identity lacks kms:ListKeys"
            .into(),
    );
    update(&mut s, Msg::InventoryLoaded(inv));
    let out = render(&mut s, 120, 16);
    assert!(out.contains("kms:ListKeys in eu-west-1 failed: access denied"), "{out}");
}
