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
    let policy = std::sync::Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
    let mut s = State::new(session, policy, now(), false);
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
                    aged(key("eu-north-1", "drop-national-id-key", KeyState::Enabled), 705, true, &[340]),
                    aged(key("eu-north-1", "drop-kyc-key", KeyState::Enabled), 800, false, &[368]),
                    aged(key("eu-north-1", "drop-db-master-key", KeyState::Enabled), 420, false, &[]),
                    pending,
                    evil,
                ],
                secrets: vec![
                    secret("eu-north-1", "JWT_SECRET", Some(90)),
                    secret("eu-north-1", "BANKID_CLIENT_SECRET", None),
                ],
                problems: vec![],
                unlisted: vec![],
            },
            RegionInventory {
                region: "eu-west-1".into(),
                keys: vec![
                    aged(key("eu-west-1", "drop-backup-key", KeyState::Enabled), 500, true, &[135]),
                    key("eu-west-1", "trove-oauth-token-key-2023", KeyState::Disabled),
                ],
                secrets: vec![],
                problems: vec![],
                unlisted: vec![],
            },
        ],
        fetched_at: Some(now() - chrono::Duration::seconds(12)),
    };
    update(&mut s, Msg::InventoryLoaded(inv));
    s
}

/// Ages and rotation history that give the fixture a spread of statuses.
fn aged(
    mut k: crate::domain::inventory::KeyItem,
    created_days_ago: i64,
    enabled: bool,
    rotated_days_ago: &[i64],
) -> crate::domain::inventory::KeyItem {
    use crate::domain::inventory::{Fetched, KeyRotation, RotationEvent, RotationKind};
    k.created = Some(now() - chrono::Duration::days(created_days_ago));
    k.rotation = Fetched::Ok(KeyRotation {
        enabled,
        period_days: enabled.then_some(365),
        next: None,
        on_demand_started: None,
        history: rotated_days_ago
            .iter()
            .map(|d| RotationEvent { at: now() - chrono::Duration::days(*d), kind: RotationKind::Automatic })
            .collect(),
    });
    k
}

/// Render as the runtime does: draw, hand the rows the list had room for back to the
/// update loop, and draw again.
fn render(s: &mut State, w: u16, h: u16) -> String {
    update(s, Msg::Resize(w, h));
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    let mut drawn = super::Drawn::default();
    t.draw(|f| drawn = super::draw(f, s)).expect("draw");
    update(s, Msg::PaneRows { max: drawn.pane_max });
    if let Some((view, rows)) = drawn.list {
        update(s, Msg::ListRows { view, rows });
        t.draw(|f| {
            super::draw(f, s);
        })
        .expect("draw");
    }
    format!("{}", t.backend())
}

fn press(s: &mut State, code: KeyCode) {
    update(s, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Type each character of `text`.
fn type_text(s: &mut State, text: &str) {
    for c in text.chars() {
        press(s, KeyCode::Char(c));
    }
}

#[test]
fn inventory_80x24() {
    insta::assert_snapshot!(render(&mut state(false), 80, 24));
}

/// At 80×24: Status, Name, Region and Due first, then the kind, so a key is told from a
/// secret; a 30-character name shows whole.
#[test]
fn inventory_at_80_columns_tells_keys_from_secrets_and_shows_long_names() {
    let mut s = state(false);
    let mut inv = s.inventory.clone().expect("inventory");
    inv.regions[1].keys.push(key("eu-west-1", "drop-mr-payments-key (replica)", KeyState::Enabled));
    update(&mut s, Msg::InventoryLoaded(inv));
    let out = render(&mut s, 80, 24);
    let header = out.lines().find(|l| l.contains("Status")).unwrap_or_default();
    let order: Vec<&str> = header.split(['│', ' ', '"']).filter(|w| !w.is_empty()).collect();
    assert_eq!(order, ["Status", "Name", "Region", "Due", "Kind", "State"], "{out}");
    let row = |name: &str| out.lines().find(|l| l.contains(name)).unwrap_or_default().to_owned();
    assert!(row("drop-mr-payments-key (replica) ").contains(" key "), "{out}");
    assert!(row("JWT_SECRET").contains(" sec "), "{out}");
    assert!(row("drop-kyc-key").contains(" key "), "{out}");
    assert!(row("drop-jwt-private-key").contains(" key  Pending"), "State takes what is left: {out}");
    let mut s = state(false);
    let out = render(&mut s, 80, 24);
    assert!(out.contains("drop-jwt-private-key       eu-north-1 -          key  PendingDeletion"), "{out}");
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

/// At 80×24 the palette lists every command, and then those that match what is typed.
#[test]
fn the_palette_shows_every_command_at_80x24() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char(':'));
    let listed = |out: &str| -> Vec<String> {
        let text = pane_text(out, "┌ Commands ");
        text.split(['│', ' ', '"', '\n']).filter(|w| !w.is_empty()).map(str::to_owned).collect()
    };
    let out = render(&mut s, 80, 24);
    let all: Vec<String> = crate::app::keymap::Command::PALETTE.iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(listed(&out), all, "{out}");
    press(&mut s, KeyCode::Char('f'));
    let out = render(&mut s, 80, 24);
    assert_eq!(listed(&out), ["feed", "freeze"], "only the matches: {out}");
    insta::assert_snapshot!(out);
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
    press(&mut s, KeyCode::Char('4'));
    insta::assert_snapshot!("session", render(&mut s, 90, 20));
}

#[test]
fn detail_pane_80x24() {
    let mut s = state(false);
    press(&mut s, KeyCode::Enter);
    insta::assert_snapshot!(render(&mut s, 80, 24));
}

/// At 80×24 every label stands apart from its value, and a wrapped value stays in the
/// value column.
#[test]
fn detail_pane_labels_and_values_are_two_columns_at_80x24() {
    let mut s = state(false);
    type_text(&mut s, "/JWT_");
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Enter);
    for _ in 0..40 {
        press(&mut s, KeyCode::Char('J'));
        render(&mut s, 80, 24);
    }
    let out = render(&mut s, 80, 24);
    assert!(out.contains("│next rotation -"), "{out}");
    assert!(out.contains("│last accessed -"), "{out}");
    let mut s = state(false);
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 80, 24);
    let rows: Vec<&str> = out.lines().skip_while(|l| !l.contains("│why ")).take(3).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows[1].starts_with(&format!("\"│{}", " ".repeat(14))) && !rows[1].contains("│action"), "{out}");
}

#[test]
fn inventory_and_detail_200x50() {
    let mut s = state(false);
    insta::assert_snapshot!("inventory_200x50", render(&mut s, 200, 50));
    // drop-kyc-key: third, after the unmanaged scratch key that the default rule judges ALERT.
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    let actions = update(&mut s, Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert!(
        matches!(actions.as_slice(), [crate::app::Action::FetchKeyPolicy { .. }]),
        "opening the pane on a key reads its key policy once: {actions:?}"
    );
    let arn = s.selected_id.clone().expect("selected");
    let doc = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/drop-key-admin"},"Action":"kms:*"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app-runner"},"Action":["kms:Decrypt","kms:GenerateDataKey"]}]}"#;
    update(
        &mut s,
        Msg::KeyPolicyLoaded {
            arn,
            summary: crate::domain::inventory::Fetched::Ok(crate::domain::keypolicy::summarise(doc)),
        },
    );
    insta::assert_snapshot!("detail_200x50", render(&mut s, 200, 50));
}

#[test]
fn stale_cache_is_marked() {
    let policy = std::sync::Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
    let mut s = State::new(state(false).session, policy, now(), false);
    let inv = state(false).inventory.expect("fixture");
    update(&mut s, Msg::CacheLoaded(inv));
    let out = render(&mut s, 100, 16);
    assert!(out.contains("(cached — refreshing)"), "{out}");
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

#[test]
fn review_mode_column_and_title() {
    let mut s = state(false);
    s.session.identity.arn = "arn:aws:iam::123456789012:user/key-auditor".into();
    press(&mut s, KeyCode::Char('v'));
    press(&mut s, KeyCode::Char('m'));
    for c in "ok".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    press(&mut s, KeyCode::Enter);
    insta::assert_snapshot!(render(&mut s, 100, 16));
}

fn big_state(n: usize) -> State {
    let policy = std::sync::Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
    let mut s = State::new(state(false).session, policy, now(), false);
    let keys = (0..n)
        .map(|i| key(if i % 2 == 0 { "eu-north-1" } else { "eu-west-1" }, &format!("k-{i:05}"), KeyState::Enabled));
    let (north, west): (Vec<_>, Vec<_>) = keys.partition(|k| k.region == "eu-north-1");
    let inv = Inventory {
        regions: vec![
            RegionInventory {
                region: "eu-north-1".into(),
                keys: north,
                secrets: vec![],
                problems: vec![],
                unlisted: vec![],
            },
            RegionInventory {
                region: "eu-west-1".into(),
                keys: west,
                secrets: vec![],
                problems: vec![],
                unlisted: vec![],
            },
        ],
        fetched_at: Some(now()),
    };
    update(&mut s, Msg::InventoryLoaded(inv));
    s
}

#[test]
fn ten_thousand_keys_stay_responsive() {
    let mut s = big_state(10_000);
    let started = std::time::Instant::now();
    press(&mut s, KeyCode::End);
    press(&mut s, KeyCode::Char('/'));
    for c in "k-0999".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    let out = render(&mut s, 120, 40);
    assert!(out.contains("k-09999"), "{out}");
    assert!(out.contains("10 of 10000"), "{out}");
    // A key press plus a frame, ten thousand rows: well under a frame budget even in debug.
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn zero_keys() {
    let mut s = big_state(0);
    let out = render(&mut s, 80, 24);
    assert!(out.contains("no keys or secrets in the selected regions"), "{out}");
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 80, 24);
    assert!(out.contains("nothing selected"), "{out}");
}

#[test]
fn hostile_metadata_is_shown_inert_and_never_panics() {
    use crate::domain::inventory::Fetched;
    let mut s = big_state(0);
    let mut k = key("eu-north-1", "a-key", KeyState::Enabled);
    k.aliases = (0..100).map(|i| format!("alias-{i:03}")).collect();
    k.description = "ø✓漢字🔑 ".repeat(1024);
    k.tags = Fetched::Ok(
        [
            ("owner".to_owned(), "evil\x1b]0;pwned\x07\x1b[31mred\u{9b}2J".to_owned()),
            ("nul".to_owned(), "a\0b\r\nc".to_owned()),
        ]
        .into(),
    );
    let inv = Inventory {
        regions: vec![RegionInventory {
            region: "eu-north-1".into(),
            keys: vec![k],
            secrets: vec![],
            problems: vec![],
            unlisted: vec![],
        }],
        fetched_at: Some(now()),
    };
    update(&mut s, Msg::InventoryLoaded(inv));
    press(&mut s, KeyCode::Enter);
    for (w, h) in [(80, 24), (200, 50), (60, 15)] {
        let out = render(&mut s, w, h);
        assert!(
            !out.contains('\x1b') && !out.contains('\x07') && !out.contains('\u{9b}') && !out.contains('\0'),
            "{out}"
        );
    }
    let out = render(&mut s, 200, 50);
    assert!(out.contains("alias-000"), "{out}");
    assert!(out.contains("evil\\e]0;pwned\\u{7}\\e[31mred\\u{9b}2J"), "{out}");
}

fn feed_state() -> State {
    use crate::app::update::feed::tests::{ev, poll, state};
    let mut s = state();
    update(&mut s, poll(vec![ev("e0", 0, "DescribeKey", "key-auditor", None)]));
    update(
        &mut s,
        poll(vec![
            ev("e1", 10, "Decrypt", "app-runner", None),
            ev("e2", 20, "Decrypt", "outsider", Some("AccessDenied")),
            ev("e3", 30, "ScheduleKeyDeletion", "security-lead", None),
            ev("e4", 40, "GenerateDataKey", "app-encrypt\x1b[2J", None),
        ]),
    );
    press(&mut s, KeyCode::Char('2'));
    s
}

#[test]
fn feed_with_pinned_alerts_120x30() {
    let mut s = feed_state();
    insta::assert_snapshot!(render(&mut s, 120, 30));
}

#[test]
fn feed_detail_pane_80x24() {
    let mut s = feed_state();
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 80, 30);
    assert!(out.contains("\"awsRegion\": \"eu-north-1\","), "pretty-printed record: {out}");
    insta::assert_snapshot!(out);
}

#[test]
fn alerts_view() {
    let mut s = feed_state();
    press(&mut s, KeyCode::Char('3'));
    insta::assert_snapshot!(render(&mut s, 120, 20));
}

#[test]
fn alerts_at_80_columns_tell_alerts_apart_by_the_second() {
    let mut s = feed_state();
    press(&mut s, KeyCode::Char('3'));
    let out = render(&mut s, 80, 24);
    for when in ["12:00:30", "12:00:40", "12:00:20"] {
        assert!(out.contains(&format!(" {when} ")), "{when} whole in the When column:\n{out}");
    }
    assert!(out.contains("at 2026-11-23 12:00:30 UTC"), "the date in the pane:\n{out}");
    insta::assert_snapshot!(out);
}

/// The indices of `labels` that appear on screen (each label is unique to its row).
fn shown(out: &str, labels: &[String]) -> Vec<usize> {
    labels.iter().enumerate().filter(|(_, l)| out.contains(l.as_str())).map(|(i, _)| i).collect()
}

/// The screen line a label first appears on.
fn line_of(out: &str, label: &str) -> Option<usize> {
    out.lines().position(|l| l.contains(label))
}

/// PageDown lands on the last visible row, then shows the next page with the cursor on
/// its last row; PageUp mirrors it; the rows on screen survive redraws. `cursor` reads
/// the view's cursor.
fn check_paging(s: &mut State, labels: impl Fn(&State) -> Vec<String>, cursor: impl Fn(&State) -> usize) {
    let first = render(s, 80, 24);
    let names = labels(s);
    let page = shown(&first, &names);
    assert!(page.len() >= 2 && page.len() < names.len(), "a partial first page: {page:?}\n{first}");
    assert_eq!(page, (0..page.len()).collect::<Vec<_>>(), "the first rows, contiguous");
    let n = page.len();
    let len = names.len();
    assert!(first.contains(&format!("─ ↓ {} more ─┘", len - n)), "rows below are marked\n{first}");

    press(s, KeyCode::PageDown);
    let out = render(s, 80, 24);
    assert_eq!(shown(&out, &names), page, "the first PageDown stays on the page\n{out}");
    assert_eq!(cursor(s), n - 1, "on its last visible row");

    press(s, KeyCode::PageDown);
    let out = render(s, 80, 24);
    let next: Vec<usize> = (n..2 * n).collect();
    assert_eq!(shown(&out, &names), next, "the next page\n{out}");
    assert_eq!(cursor(s), 2 * n - 1, "on its last visible row");
    assert!(out.contains(&format!("─ ↑ {n} more · ↓ {} more ─┘", len - 2 * n)), "rows above and below\n{out}");
    for _ in 0..3 {
        assert_eq!(shown(&render(s, 80, 24), &names), next, "redraws keep the offset");
    }

    press(s, KeyCode::PageUp);
    let out = render(s, 80, 24);
    assert_eq!(shown(&out, &names), next, "the first PageUp stays on the page");
    assert_eq!(cursor(s), n, "on its first visible row");
    press(s, KeyCode::PageUp);
    let out = render(s, 80, 24);
    assert_eq!(shown(&out, &names), page, "the previous page\n{out}");
    assert_eq!(cursor(s), 0);
}

#[test]
fn inventory_paging_with_the_filter_line_and_the_detail_pane() {
    let mut s = state(false);
    let inv = Inventory {
        regions: vec![RegionInventory {
            region: "eu-north-1".into(),
            keys: (0..60).map(|i| key("eu-north-1", &format!("page-key-{i:03}"), KeyState::Enabled)).collect(),
            secrets: vec![],
            problems: vec![],
            unlisted: vec![],
        }],
        fetched_at: Some(now()),
    };
    update(&mut s, Msg::InventoryLoaded(inv));
    press(&mut s, KeyCode::Char('/'));
    for c in "page".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Enter);
    assert!(s.detail_open && s.filter == "page");
    check_paging(&mut s, |s| s.rows().iter().map(|r| format!("{} ", r.name)).collect(), |s| s.cursor);
}

/// The security lead's feed: 60 reads, and deletions scheduled that pin alerts.
fn busy_feed() -> State {
    use crate::app::update::feed::tests::{ev, poll, state};
    let mut s = state();
    update(&mut s, poll(vec![]));
    let mut batch: Vec<(String, String)> =
        (0..3).map(|i| ev(&format!("d{i}"), i, "ScheduleKeyDeletion", &format!("deleter-{i:03}"), None)).collect();
    batch.extend((0..60).map(|i| ev(&format!("r{i}"), 100 + i, "Decrypt", &format!("reader-{i:03}"), None)));
    update(&mut s, poll(batch));
    s
}

/// The readers' names label their rows (the deleters' also stand in the alert strip).
fn feed_labels(s: &State) -> Vec<String> {
    let label = |name: &str| if name.starts_with("reader-") { name.to_owned() } else { "\u{0}".to_owned() };
    s.feed.rows().iter().map(|e| label(&e.principal.short_name())).collect()
}

#[test]
fn feed_paging_with_pinned_alerts_frozen_and_the_record_pane() {
    let mut s = busy_feed();
    press(&mut s, KeyCode::Char('2'));
    press(&mut s, KeyCode::Char('f'));
    press(&mut s, KeyCode::Enter);
    assert!(s.feed.frozen.is_some() && s.feed.detail_open && !s.feed.open_alerts().is_empty());
    check_paging(&mut s, feed_labels, |s| s.feed.cursor);
}

#[test]
fn feed_rows_on_screen_stay_put_as_new_events_arrive() {
    use crate::app::update::feed::tests::{ev, poll};
    let mut s = busy_feed();
    press(&mut s, KeyCode::Char('2'));
    for _ in 0..2 {
        press(&mut s, KeyCode::PageDown);
        render(&mut s, 80, 24);
    }
    let out = render(&mut s, 80, 24);
    let selected = feed_labels(&s)[s.feed.cursor].clone();
    let at = line_of(&out, &selected).expect("the selected event is on screen");
    update(
        &mut s,
        poll((0..3).map(|i| ev(&format!("n{i}"), 500 + i, "Decrypt", &format!("late-{i:03}"), None)).collect()),
    );
    let out = render(&mut s, 80, 24);
    assert_eq!(feed_labels(&s)[s.feed.cursor], selected, "the cursor stays on its event");
    assert_eq!(line_of(&out, &selected), Some(at), "on the same screen line\n{out}");
}

#[test]
fn alerts_paging() {
    use crate::app::update::feed::tests::{ev, poll, state};
    let mut s = state();
    update(&mut s, poll(vec![]));
    update(
        &mut s,
        poll(
            (0..40).map(|i| ev(&format!("d{i}"), i, "ScheduleKeyDeletion", &format!("deleter-{i:03}"), None)).collect(),
        ),
    );
    press(&mut s, KeyCode::Char('3'));
    let labels = |s: &State| {
        s.feed.alert_rows().iter().map(|a| super::widgets::short_principal(&a.principal).to_owned()).collect()
    };
    check_paging(&mut s, labels, |s| s.feed.alert_cursor);
}

fn incident(write: bool) -> State {
    crate::app::update::incident::tests::incident_state(write)
}

#[test]
fn incident_view_120x40() {
    let mut s = incident(true);
    let out = render(&mut s, 120, 40);
    assert!(out.contains("containment 0:40:00 left"), "one hour from detection (09:00), now 09:20: {out}");
    assert!(out.contains("kms:DisableKey KeyId=arn:aws:kms:eu-north-1"), "the next step's exact call: {out}");
    insta::assert_snapshot!(out);
}

#[test]
fn incident_view_80x24() {
    let mut s = incident(false);
    insta::assert_snapshot!(render(&mut s, 80, 24));
}

/// The steps of the checklist on screen: the rows of its pane.
fn checklist_rows(out: &str) -> usize {
    out.lines().skip_while(|l| !l.contains("┌ Incident ")).skip(1).take_while(|l| !l.contains('└')).count()
}

/// At 80×24 the checklist shows a few of its steps and says how many lie above and below.
#[test]
fn the_incident_checklist_marks_steps_above_and_below_at_80x24() {
    let mut s = incident(false);
    let n = s.incident.as_ref().map_or(0, |i| i.plan.steps.len());
    let out = render(&mut s, 80, 24);
    let shown = checklist_rows(&out);
    assert!(shown < n, "{out}");
    assert!(out.contains(&format!("─ ↓ {} more ─┘", n - shown)), "{out}");
    for _ in 0..n {
        press(&mut s, KeyCode::Down);
    }
    let out = render(&mut s, 80, 24);
    let shown = checklist_rows(&out);
    assert!(out.contains(&format!("─ ↑ {} more ─┘", n - shown)) && !out.contains('↓'), "{out}");
}

/// At 80 columns the clocks line shows every clock whole, abbreviated (was cut at
/// `post-mor`); at 120 in full.
#[test]
fn the_incident_clocks_fit_80_columns() {
    let mut s = incident(false);
    let clocks = |out: &str| out.lines().nth(2).unwrap_or_default().trim_matches('"').trim_end().to_owned();
    let line = clocks(&render(&mut s, 80, 24));
    assert_eq!(line, "elapsed 0:10:00 · contain 0:40:00 · 72h notice 71:40:00 · post-mortem 47:50:00");
    let line = clocks(&render(&mut s, 120, 40));
    assert!(
        line.ends_with("· containment 0:40:00 left · 72h notice 71:40:00 left · post-mortem 47:50:00 left"),
        "{line}"
    );
}

#[test]
fn incident_confirmation_dialog() {
    let mut s = incident(true);
    press(&mut s, KeyCode::Enter);
    for c in "drop-kyc".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    let out = render(&mut s, 120, 40);
    assert!(out.contains("[ Cancel ]"), "Cancel is the default until the alias matches: {out}");
    insta::assert_snapshot!(out);
}

/// A step that changes AWS without being destructive: its calls, `y` runs, Cancel default.
#[test]
fn incident_action_confirmation_dialog() {
    let mut s = crate::app::update::incident::tests::before_notify();
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 120, 40);
    assert!(out.contains("sns:Publish") && out.contains("[ Cancel ]") && out.contains("y runs"), "{out}");
    insta::assert_snapshot!(out);
}

/// revoke-grants with no grant to revoke is an acknowledgement: its panel asks for a note,
/// not the alias, whether or not it is the next step.
#[test]
fn incident_revoke_grants_without_grants_asks_only_a_note() {
    let mut s = crate::app::update::incident::tests::at_create_key(true, None);
    while s.incident.as_ref().and_then(|i| i.selected()).is_some_and(|x| x.id != "revoke-grants") {
        press(&mut s, KeyCode::Down);
    }
    let out = render(&mut s, 120, 40);
    assert!(out.contains("Enter records an acknowledgement") && out.contains("needs a note"), "{out}");
    assert!(!out.contains("destructive"), "{out}");
    insta::assert_snapshot!(out);
}

/// Two open incidents: the title says which one this is and how to switch.
#[test]
fn incident_view_with_two_open_incidents_80x24() {
    let mut s = incident(true);
    update(&mut s, crate::app::update::incident::tests::two_open());
    let out = render(&mut s, 80, 24);
    assert!(out.contains("Incident 2 of 2 ([ ] switch): on drop-kyc-key — kms-key-compromise"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn no_incident_hint_names_allow_write() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char('5'));
    let out = render(&mut s, 120, 40);
    assert!(out.contains("keydeck --allow-write incident start --key ALIAS"), "{out}");
    assert!(!out.contains("unfinished incident"), "{out}");
    // Incidents whose key is not found here (a sandbox seeded again): said, not hidden.
    update(&mut s, Msg::IncidentsElsewhere(3));
    let out = joined(&render(&mut s, 80, 24));
    assert!(out.contains("3 unfinished incidents in this data dir are about a key or secret not found"), "{out}");
    assert!(out.contains("keydeck incident list"), "{out}");
}

#[test]
fn incident_scope_report() {
    let mut s = incident(true);
    press(&mut s, KeyCode::Up);
    let out = render(&mut s, 120, 40);
    assert!(out.contains("batch-export") && out.contains("KEY ARN"), "who needs a configuration change: {out}");
    insta::assert_snapshot!(out);
}

#[test]
fn no_incident_explains_how_to_start_one() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char('5'));
    let out = render(&mut s, 80, 24);
    assert!(out.contains("press i"), "{out}");
}

/// Issue 12 #9: at 80×24 the daily review still reads Status, Name, Region and Due.
#[test]
fn inventory_at_80_columns_keeps_the_due_date() {
    let mut s = state(false);
    let out = render(&mut s, 80, 24);
    let header = out.lines().find(|l| l.contains("Status")).expect("header row");
    let pos = |w: &str| header.find(w);
    assert!(pos("Status") < pos("Name") && pos("Name") < pos("Region") && pos("Region") < pos("Due"), "{header}");
    assert!(out.contains("2026-"), "due dates shown: {out}");
}

/// The detail pane of the one item the filter `query` leaves, at 200×50.
fn detail_of(mut s: State, query: &str) -> String {
    type_text(&mut s, &format!("/{query}"));
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Enter);
    render(&mut s, 200, 50)
}

#[test]
fn detail_shows_imported_material_and_whose_replica_a_key_is() {
    use crate::domain::inventory::{ImportedMaterial, MultiRegionKeys, RegionalKey};
    let s = state(false);
    let mut imported = aged(key("eu-west-1", "byok-key", KeyState::Enabled), 100, false, &[]);
    imported.origin = "EXTERNAL".into();
    imported.imported = Some(ImportedMaterial {
        expiration_model: Some("KEY_MATERIAL_EXPIRES".into()),
        valid_to: Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).single(),
        materials: vec![],
    });
    let mut primary = aged(key("eu-north-1", "mr-key", KeyState::Enabled), 100, true, &[]);
    let at = |region: &str| RegionalKey { arn: primary.arn.replace("eu-north-1", region), region: region.into() };
    primary.multi_region = Some("PRIMARY".into());
    primary.multi_region_keys = Some(MultiRegionKeys {
        key_type: "PRIMARY".into(),
        primary: Some(at("eu-north-1")),
        replica_regions: vec!["eu-west-1".into()],
    });
    let mut replica = primary.clone();
    replica.region = "eu-west-1".into();
    replica.arn = at("eu-west-1").arn;
    replica.aliases.clear();
    replica.key_id = "mrk-replica".into();
    replica.multi_region = Some("REPLICA".into());
    replica.multi_region_keys = Some(MultiRegionKeys {
        key_type: "REPLICA".into(),
        primary: Some(at("eu-north-1")),
        replica_regions: vec!["eu-west-1".into()],
    });
    let mut inv = s.inventory.clone().expect("inventory");
    inv.regions[0].keys.push(primary);
    inv.regions[1].keys.extend([imported, replica]);
    let with = |inv: &Inventory| {
        let mut s = state(false);
        update(&mut s, Msg::InventoryLoaded(inv.clone()));
        s
    };
    let out = detail_of(with(&inv), "byok");
    assert!(out.contains("key material") && out.contains("expires 2026-11-28 09:00 UTC"), "{out}");
    assert!(out.contains("(in 5 d; policy alerts 14 d before expiry)"), "{out}");
    assert!(
        out.contains("ALERT     key     byok-key      eu-west-1   2026-11-28"),
        "the expiry is the Due date: {out}"
    );
    let out = detail_of(with(&inv), "replica");
    assert!(out.contains("REPLICA, replica of mr-key (eu-north-1)"), "{out}");
    assert!(out.contains("mr-key (replica)"), "the replica goes by its primary's name: {out}");
    assert!(out.contains("why           replica of mr-key (eu-north-1): "), "{out}");
}

/// The security lead's console with a request in every section of the approvals view.
fn approvals(write: bool) -> State {
    let mut s = state(write);
    s.session.identity.arn = crate::app::approvals::fixtures::SECURITY_LEAD.into();
    update(&mut s, Msg::ApprovalsLoaded(Ok(crate::app::approvals::fixtures::listing(now()))));
    s
}

#[test]
fn approvals_view_80x24() {
    let mut s = approvals(true);
    press(&mut s, KeyCode::Char('6'));
    let out = render(&mut s, 80, 24);
    for section in ["Waiting for me (1)", "Mine (1)", "Open, for others (1)", "History (2)"] {
        assert!(out.contains(section), "{section}");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn approvals_view_120x40() {
    let mut s = approvals(false);
    press(&mut s, KeyCode::Char('6'));
    press(&mut s, KeyCode::Down);
    insta::assert_snapshot!(render(&mut s, 120, 40));
}

/// An ended request's proposer is not looked up by a listing: the row and the line
/// under the list say so, not `-`.
#[test]
fn an_ended_requests_proposer_reads_not_looked_up() {
    let mut s = approvals(true);
    press(&mut s, KeyCode::Char('6'));
    for _ in 0..3 {
        press(&mut s, KeyCode::Down);
    }
    assert_eq!(s.approvals.selected_id.as_deref(), Some("20261123-080000-0badcafe"));
    let out = render(&mut s, 120, 40);
    assert!(out.contains("(not read)"), "{out}");
    let text = joined(&out);
    assert!(
        text.contains("proposer not looked up for ended requests: keydeck approvals show 20261123-080000-0badcafe"),
        "{out}"
    );
}

#[test]
fn approvals_view_says_why_a_listing_failed() {
    let mut s = state(false);
    press(&mut s, KeyCode::Char('6'));
    let problem =
        "approvals: listing the request store failed: secretsmanager:ListSecrets in eu-north-1: access denied";
    update(&mut s, Msg::ApprovalsLoaded(Err(problem.into())));
    let out = render(&mut s, 120, 20);
    assert!(out.contains("secretsmanager:ListSecrets in eu-north-1: access denied"), "{out}");
}

#[test]
fn the_header_shows_requests_waiting_for_me_in_every_view_at_80_columns() {
    let mut s = approvals(false);
    for view in ['1', '2', '3', '4', '5', '6'] {
        press(&mut s, KeyCode::Char(view));
        let out = render(&mut s, 80, 24);
        assert!(out.lines().next().is_some_and(|l| l.contains("⚑ 1 waiting: 6")), "view {view}:\n{out}");
    }
    press(&mut s, KeyCode::Char('1'));
    insta::assert_snapshot!(render(&mut s, 80, 24));
    update(&mut s, Msg::ApprovalsLoaded(Ok(crate::domain::approval::Listing::default())));
    assert!(!render(&mut s, 80, 24).contains("waiting"), "gone once nothing waits");
}

#[test]
fn approval_dialog() {
    use crate::app::update::feed::tests::{ev, poll};
    let mut s = approvals(true);
    update(
        &mut s,
        poll(vec![
            ev("e1", -300, "Decrypt", "app-runner", None),
            ev("e2", -90, "DescribeKey", "key-admin", None),
            ev("e3", -60, "DisableKeyRotation", "key-admin", None),
        ]),
    );
    press(&mut s, KeyCode::Char('6'));
    press(&mut s, KeyCode::Enter);
    let kyc = s.inventory.as_ref().and_then(|i| i.keys().find(|k| k.display_name() == "drop-kyc-key").cloned());
    let arn = kyc.as_ref().map(|k| k.arn.clone()).unwrap_or_default();
    update(&mut s, Msg::ApprovalTargetRead { arn, read: kyc.map(Box::new).ok_or_else(|| "no fixture key".to_owned()) });
    for c in "drop-kyc".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 120, 40);
    for needle in [
        "kms:RotateKeyOnDemand",
        "KeyId=arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key",
        "user/key-admin (as CloudTrail attests)",
        "Type drop-kyc-key to approve: drop-kyc▏",
        "refused: \"drop-kyc\" is not the key's alias",
        "[ Cancel ]",
        "DisableKeyRotation",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    assert!(!out.contains("DescribeKey"), "metadata reads are left out");
    insta::assert_snapshot!(out);
    // At 80×24 the typed alias and the buttons still show.
    let small = render(&mut s, 80, 24);
    assert!(small.contains("[ Cancel ]") && small.contains("to approve: drop-kyc▏"), "{small}");
    insta::assert_snapshot!("approval_dialog_80x24", small);
}

/// A request rewritten after it was proposed (its hash recomputed): the dialog says so
/// before anything is typed, from the comparison with CloudTrail's record.
#[test]
fn approval_dialog_for_a_changed_request_says_so_before_anything_is_typed() {
    let mut s = approvals(true);
    let mut listing = crate::app::approvals::fixtures::listing(now());
    listing.waiting_for_me[0].content = crate::domain::approval::Content::Changed;
    assert!(listing.waiting_for_me[0].request.hash_matches(), "its own hash matches: that proves nothing");
    update(&mut s, Msg::ApprovalsLoaded(Ok(listing)));
    press(&mut s, KeyCode::Char('6'));
    let view = render(&mut s, 80, 24);
    assert!(view.contains("changed"), "the listing's state:\n{view}");
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 80, 24);
    let text = joined(&out);
    assert_all(&text, &["CHANGED since it was proposed", "approval will be refused; reject it"], &out);
    assert!(!text.contains("matches CloudTrail"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn propose_dialog_from_the_inventory() {
    let mut s = state(true);
    // drop-kyc-key is Overdue in the fixture.
    while s.rows().get(s.cursor).is_some_and(|r| r.name != "drop-kyc-key") {
        press(&mut s, KeyCode::Down);
    }
    press(&mut s, KeyCode::Char('P'));
    for c in "800 days".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    let out = render(&mut s, 100, 24);
    assert!(
        out.contains("kms:RotateKeyOnDemand KeyId=arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

/// A key never rotated: the propose dialog says so, with its creation date, as the
/// approval dialog does (the policy counts its age from creation).
#[test]
fn propose_dialog_says_never_rotated_for_a_key_never_rotated() {
    let mut s = state(true);
    let mut inv = s.inventory.clone().expect("inventory");
    let created = now() - chrono::Duration::days(420);
    for k in inv.regions.iter_mut().flat_map(|r| r.keys.iter_mut()).filter(|k| k.display_name() == "drop-kyc-key") {
        k.created = Some(created);
        if let crate::domain::inventory::Fetched::Ok(r) = &mut k.rotation {
            r.history.clear();
        }
    }
    update(&mut s, Msg::InventoryLoaded(inv));
    while s.rows().get(s.cursor).is_some_and(|r| r.name != "drop-kyc-key") {
        press(&mut s, KeyCode::Down);
    }
    press(&mut s, KeyCode::Char('P'));
    let out = render(&mut s, 100, 24);
    let text = joined(&out);
    let want =
        format!("Why now  never rotated (created {}, 420 d ago); policy: every 365 d", created.format("%Y-%m-%d"));
    assert!(text.contains(&want), "{want:?} not in\n{out}");
    assert!(!text.contains("last rotated"), "{out}");
}

/// The screen's text with each row's borders and padding dropped and the rows joined by
/// one space: what word wrapping split reads whole again.
fn joined(out: &str) -> String {
    out.lines()
        .map(|l| l.trim().trim_matches('"').trim_matches(|c: char| c == '│' || c == ' '))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every one of `needles` is in `text` (else the failure shows `screen`).
fn assert_all(text: &str, needles: &[&str], screen: &str) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in\n{screen}");
    }
}

/// A first-use finding at 80×24: the create-key step (dual approval) says who proposes
/// and who approves, and the whole command each runs, not "Enter will call".
#[test]
fn incident_create_key_step_shows_who_proposes_and_approves_at_80x24() {
    let mut s = crate::app::update::incident::tests::at_create_key(true, None);
    let out = render(&mut s, 80, 24);
    assert_all(
        &joined(&out),
        &[
            "a key-admin proposes, a ciso approves",
            "keydeck --allow-write incident run 20261123T091000Z-a1b2c3 --step create-key",
            "keydeck --allow-write approvals approve ID --confirm drop-kyc-key",
        ],
        &out,
    );
    assert!(!out.contains("Enter will call"), "{out}");
    insta::assert_snapshot!(out);
    // Once proposed, the approver's command names the request.
    let mut s = crate::app::update::incident::tests::at_create_key(true, Some("20261123-091300-e28ae3b0"));
    let out = render(&mut s, 80, 24);
    let text = joined(&out);
    assert!(
        text.contains("keydeck --allow-write approvals approve 20261123-091300-e28ae3b0 --confirm drop-kyc-key"),
        "{out}"
    );
    assert!(text.contains("Proposed: request 20261123-091300-e28ae3b0"), "{out}");
    insta::assert_snapshot!("incident_create_key_waiting_80x24", out);
}

/// A long status message wraps onto up to three rows at 80 columns, taken from the
/// view; longer still, the third row ends in `…`; a short one keeps one row.
#[test]
fn the_status_line_wraps_at_80_columns() {
    let long = "refused: arn:aws:iam::123456789012:user/security-lead does not hold the key-admin role (004 §6; the policy's [approvals.rotate-key]): a key-admin proposes rotate-key, then a ciso approves it";
    let mut s = state(false);
    let short = render(&mut s, 80, 24);
    s.status = Some(crate::app::state::Status { text: long.into(), error: true });
    let out = render(&mut s, 80, 24);
    assert!(joined(&out).contains(long), "the whole message:\n{out}");
    let rows = out.lines().rev().take_while(|l| !l.contains('└')).count();
    assert_eq!(rows, 3, "three rows at the bottom:\n{out}");
    assert!(out.lines().count() == short.lines().count() && out.contains("Status"), "the view gave them up");
    insta::assert_snapshot!(out);
    s.status = Some(crate::app::state::Status { text: format!("{long} {long}"), error: true });
    let out = render(&mut s, 80, 24);
    assert_eq!(out.lines().rev().take_while(|l| !l.contains('└')).count(), 3, "{out}");
    assert!(out.lines().last().is_some_and(|l| l.trim_end_matches('"').trim_end().ends_with('…')), "{out}");
    s.status = Some(crate::app::state::Status { text: "refreshed".into(), error: false });
    let out = render(&mut s, 80, 24);
    assert_eq!(out.lines().rev().take_while(|l| !l.contains('└')).count(), 1, "{out}");
}

/// A status message says how old it is once it is a minute old (first, so a long one's
/// `…` never cuts it); a new message starts fresh.
#[test]
fn an_old_status_message_says_how_old_it_is() {
    let mut s = state(false);
    let t0 = s.now;
    update(&mut s, Msg::IncidentDone(Err("disable failed: AccessDeniedException".into())));
    assert!(last_row(&render(&mut s, 80, 24)).starts_with("disable failed"), "fresh: no age");
    update(&mut s, Msg::Tick(t0 + chrono::Duration::seconds(59)));
    assert!(last_row(&render(&mut s, 80, 24)).starts_with("disable failed"), "59 s: no age");
    update(&mut s, Msg::Tick(t0 + chrono::Duration::minutes(12)));
    let row = last_row(&render(&mut s, 80, 24));
    assert!(row.starts_with("12 min ago · disable failed: AccessDeniedException"), "{row}");
    update(&mut s, Msg::IncidentDone(Ok("disable: done".into())));
    assert!(last_row(&render(&mut s, 80, 24)).starts_with("disable: done"), "a new message is fresh");
}

fn last_row(screen: &str) -> String {
    screen.lines().last().unwrap_or_default().trim_matches('"').trim().to_owned()
}

/// The footer names, per view, keys that work there: `/ filter` only where `/` filters,
/// the view's own keys (acknowledge, run step, reload), help and quit everywhere; all
/// within 80 columns.
#[test]
fn the_footer_names_the_keys_of_each_view() {
    use crate::app::View;
    let own: [(View, &str); 6] = [
        (View::Inventory, "Enter detail"),
        (View::Feed, "f freeze"),
        (View::Alerts, "x acknowledge"),
        (View::Session, "r refresh"),
        (View::Incident, "Enter run step"),
        (View::Approvals, "r reload"),
    ];
    for (i, (view, key)) in own.into_iter().enumerate() {
        let mut s = state(false);
        press(&mut s, KeyCode::Char(char::from(b'1' + u8::try_from(i).expect("six views"))));
        assert_eq!(s.view, view);
        let footer = last_row(&render(&mut s, 80, 24));
        let filters = matches!(view, View::Inventory | View::Feed);
        assert_eq!(footer.contains("/ filter"), filters, "{view:?}: {footer}");
        assert!(footer.starts_with("? help  : command") && footer.ends_with("q quit"), "{view:?}: {footer}");
        assert!(footer.contains(key), "{view:?}: {footer}");
    }
}

/// At 80 columns the tabs line keeps every tab, the alert count and the freshness whole,
/// abbreviated: `refreshed 12s` (was cut to `refreshed 1`).
#[test]
fn the_tabs_line_fits_80_columns() {
    let tabs = |out: &str| out.lines().nth(1).unwrap_or_default().trim_matches('"').trim_end().to_owned();
    let mut s = state(false);
    let line = tabs(&render(&mut s, 80, 24));
    assert!(line.ends_with("refreshed 12s") && line.contains(" 1 Inventory "), "{line}");
    let mut s = feed_state();
    for key in ['1', '3', '6'] {
        press(&mut s, KeyCode::Char(key));
        let line = tabs(&render(&mut s, 80, 24));
        assert!(line.ends_with("refreshed 0s") && line.contains(" 3 ALERTS "), "{line}");
        assert!(line.starts_with(" 1 Inv  2 Feed  3 Alerts  4 Sess  5 Incid  6 Appr "), "{line}");
    }
    let line = tabs(&render(&mut s, 120, 24));
    assert!(line.contains(" 6 Approvals ") && line.contains("refreshed 0 s ago"), "full at 120: {line}");
}

/// At 80×24 both consoles tell who they are: the principal's name and the account.
#[test]
fn the_header_names_the_principal_and_the_account_at_80_columns() {
    let mut s = approvals(false);
    let out = render(&mut s, 80, 24);
    let first = out.lines().next().unwrap_or_default();
    assert_all(first, &["⚑ 1 waiting: 6", "123456789012", "user/security-lead"], first);
    let mut s = state(true);
    s.session.identity.arn = "arn:aws:sts::123456789012:assumed-role/KeyAdmin/alice".into();
    let out = render(&mut s, 80, 24);
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains("123456789012  assumed-role/KeyAdmin/alice"), "{first}");
    let out = render(&mut s, 140, 24);
    assert!(out.contains("arn:aws:sts::123456789012:assumed-role/KeyAdmin/alice"), "whole ARN when it fits: {out}");
}

/// The approval dialog for a create-key request with a long key policy at 80×24: the
/// typed alias, the refusal and the buttons stay on screen; the body is cut with `…`.
#[test]
fn approval_dialog_for_a_long_create_key_request_keeps_its_buttons_at_80x24() {
    use crate::domain::approval::{NewRequest, Operation, Request};
    let mut s = approvals(true);
    let policy = crate::domain::policy::Policy::default_policy().expect("policy");
    let statement = r#"{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}"#;
    let key_policy = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, [statement; 8].join(","));
    let mut parameters = serde_json::Map::new();
    parameters.insert("Description".into(), "KYC documents".into());
    parameters.insert("KeySpec".into(), "SYMMETRIC_DEFAULT".into());
    parameters.insert("KeyUsage".into(), "ENCRYPT_DECRYPT".into());
    parameters.insert("Policy".into(), key_policy.into());
    let tags = serde_json::json!([
        {"TagKey": "keydeck:incident", "TagValue": "20261123T091000Z-a1b2c3"},
        {"TagKey": "keydeck:replaces", "TagValue": "arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key"},
    ]);
    parameters.insert("Tags".into(), tags);
    let mut listing = crate::app::approvals::fixtures::listing(now());
    let waiting = &mut listing.waiting_for_me[0];
    waiting.request = Request::new(
        NewRequest {
            id: waiting.id.clone(),
            operation: Operation::CreateKey,
            target_arn: waiting.request.target_arn.clone(),
            parameters,
            reason: "incident 20261123T091000Z-a1b2c3: replacement key".into(),
            created: now() - chrono::Duration::minutes(5),
        },
        &policy.approvals,
    )
    .expect("a valid request");
    update(&mut s, Msg::ApprovalsLoaded(Ok(listing)));
    press(&mut s, KeyCode::Char('6'));
    press(&mut s, KeyCode::Enter);
    for c in "drop-kyc".chars() {
        press(&mut s, KeyCode::Char(c));
    }
    press(&mut s, KeyCode::Enter);
    let out = render(&mut s, 80, 24);
    assert_all(&out, &["to approve: drop-kyc▏", "refused:", "[ Cancel ]", "more lines"], &out);
    // Who proposed it, why, until when, and whether it is what was proposed: always shown.
    assert_all(
        &joined(&out),
        &[
            "Proposer arn:aws:iam::123456789012:user/key-admin (as CloudTrail attests)",
            "Reason   incident 20261123T091000Z-a1b2c3: replacement key",
            "expires 2026-11-24 08:55:42",
            "Content  matches CloudTrail's record of the proposal",
            "kms:CreateKey",
        ],
        &out,
    );
    insta::assert_snapshot!(out);
}

/// At 80 columns the feed tells approval requests apart (their ids share the date, so
/// the table shows their tails) and its Event column fits `approval prep executed`.
#[test]
fn feed_at_80_columns_tells_approval_requests_apart() {
    use crate::app::update::feed::tests::{poll, state};
    let ids = ["20261123-085500-a1b2c3d4", "20261123-085600-e28ae3b0"];
    let records = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let t = (now() + chrono::Duration::seconds(10 * i as i64)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let secret = format!("keydeck/approvals/{id}");
            let raw = crate::domain::trail::fixtures::record(
                &format!("p{i}"),
                &t,
                "PutSecretValue",
                "secretsmanager.amazonaws.com",
                "eu-north-1",
                "security-lead",
                None,
                None,
                Some(&secret),
            );
            let mut v: serde_json::Value = serde_json::from_str(&raw).expect("fixture record");
            v["requestParameters"]["clientRequestToken"] = format!("executed-{id}-77aa").into();
            (format!("p{i}"), v.to_string())
        })
        .collect();
    let mut s = state();
    update(&mut s, poll(records));
    press(&mut s, KeyCode::Char('2'));
    let out = render(&mut s, 80, 24);
    assert_all(&out, &["approval prep executed", "approval …a1b2c3d4", "approval …e28ae3b0"], &out);
    insta::assert_snapshot!(out);
}

/// At 80 columns the feed gives the key or secret its whole name, before the principal
/// and the event label take their widest.
#[test]
fn feed_at_80_columns_shows_whole_key_names() {
    use crate::app::update::feed::tests::{now, poll, state};
    let ev = |id: &str, secs: i64, name: &str, user: &str, error: Option<&str>, key: &str| {
        let t = (now() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let arn = format!("arn:aws:kms:eu-north-1:123456789012:key/id-{key}");
        let raw = crate::domain::trail::fixtures::record(
            id,
            &t,
            name,
            "kms.amazonaws.com",
            "eu-north-1",
            user,
            error,
            Some(&arn),
            None,
        );
        (id.to_owned(), raw)
    };
    let mut s = state();
    update(
        &mut s,
        poll(vec![
            ev("n1", 1, "Decrypt", "app-payments-runner", None, "drop-national-id-key"),
            ev("n2", 2, "ScheduleKeyDeletion", "outsider", Some("AccessDenied"), "drop-national-id-key"),
            ev("n3", 3, "GenerateDataKey", "security-lead", None, "drop-kyc-key"),
        ]),
    );
    press(&mut s, KeyCode::Char('2'));
    let out = render(&mut s, 80, 24);
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("ScheduleKeyDeletion") || l.contains("Decrypt")).collect();
    assert!(rows.len() >= 2, "{out}");
    for row in rows {
        assert!(row.contains("drop-national-id-key "), "the whole name: {out}");
    }
    assert!(out.contains("app-payments-runner "), "the principal whole when there is room: {out}");
    insta::assert_snapshot!(out);
}

/// The rows of a screen that lie inside the pane whose top border has `title`.
fn pane_text(out: &str, title: &str) -> String {
    let mut rows = out.lines().skip_while(|l| !l.contains(title)).skip(1);
    let inside: Vec<&str> = rows.by_ref().take_while(|l| !l.contains('└')).collect();
    joined(&inside.join("\n"))
}

/// At 80×24 the inventory's detail pane scrolls (J/K) past the ARN to its last row,
/// and no further; K scrolls back; a new selection starts at the top.
#[test]
fn detail_pane_scrolls_at_80x24() {
    let mut s = state(false);
    press(&mut s, KeyCode::Enter);
    let top = render(&mut s, 80, 24);
    assert!(top.contains("J/K scroll"), "the pane says it scrolls: {top}");
    let first = pane_text(&top, "Detail");
    for _ in 0..40 {
        press(&mut s, KeyCode::Char('J'));
        render(&mut s, 80, 24);
    }
    let bottom = render(&mut s, 80, 24);
    let last = pane_text(&bottom, "Detail");
    assert_ne!(first, last, "{bottom}");
    assert!(s.pane_scroll > 0 && s.pane_scroll == s.pane_max, "capped at the end: {} {}", s.pane_scroll, s.pane_max);
    insta::assert_snapshot!(bottom);
    press(&mut s, KeyCode::Char('K'));
    assert_eq!(s.pane_scroll, s.pane_max.saturating_sub(3));
    press(&mut s, KeyCode::Down);
    assert_eq!(s.pane_scroll, 0, "a new selection starts at the top");
}

/// At 80×24 the incident's scope report (every caller) is reached by scrolling the
/// step panel.
#[test]
fn incident_scope_report_scrolls_at_80x24() {
    let mut s = incident(true);
    press(&mut s, KeyCode::Up);
    let before = render(&mut s, 80, 24);
    assert!(!before.contains("outsider"), "not all of it fits at first: {before}");
    for _ in 0..10 {
        press(&mut s, KeyCode::Char('J'));
        render(&mut s, 80, 24);
    }
    let out = render(&mut s, 80, 24);
    assert!(out.contains("batch-export") && out.contains("outsider"), "the callers: {out}");
    insta::assert_snapshot!(out);
}

/// A destructive step with nothing to do now (revoke-grants when the key has no grant)
/// only records an acknowledgement: its panel does not ask for the alias.
#[test]
fn a_step_whose_outcome_is_unknown_says_enter_settles_it() {
    let mut s = crate::app::update::incident::tests::unknown_notify();
    let out = joined(&render(&mut s, 120, 40));
    assert!(out.contains("outcome unknown: Enter settles it by reading AWS"), "{out}");
    assert!(!out.contains("y runs them"), "{out}");
}

#[test]
fn a_destructive_step_that_only_acknowledges_does_not_ask_for_the_alias() {
    use crate::domain::runbook::{NextStep, Work};
    let mut s = incident(true);
    let inc = s.incident.as_mut().expect("incident");
    let at = inc.plan.steps.iter().position(|x| x.id == "revoke-grants").expect("revoke-grants");
    inc.cursor = at;
    inc.plan.next = Some(NextStep { step: "revoke-grants".into(), work: Ok(Work::Acknowledge), refusals: vec![] });
    let out = render(&mut s, 120, 40);
    assert!(out.contains("Enter records an acknowledgement with your note"), "{out}");
    assert!(!out.contains("destructive: type the key alias"), "{out}");
    // With grants to revoke, it asks.
    let inc = s.incident.as_mut().expect("incident");
    inc.plan.next = Some(NextStep {
        step: "revoke-grants".into(),
        work: Ok(Work::Calls { ops: vec![], attempt: 1 }),
        refusals: vec![],
    });
    assert!(render(&mut s, 120, 40).contains("destructive: type the key alias"));
}

/// At 80×24 the help of every view shows each binding's whole text (wrapped under itself)
/// and how to close it.
#[test]
fn help_fits_every_view_at_80x24() {
    use crate::app::View;
    for view in View::ALL {
        let mut s = incident(true);
        s.view = view;
        press(&mut s, KeyCode::Char('?'));
        let out = render(&mut s, 80, 24);
        assert!(out.contains("any key closes this help"), "{view:?}:\n{out}");
        let flat: String = out.split_whitespace().collect::<Vec<_>>().join(" ").replace("│ ", "").replace(" │", "");
        use crate::app::keymap::Command as C;
        let grouped = [C::Down, C::Up, C::PageDown, C::PageUp, C::Top, C::Bottom, C::ScrollDown, C::ScrollUp];
        let listed = |b: &&&crate::app::keymap::Binding| {
            !b.help.is_empty() && !grouped.contains(&b.command) && !b.keys.starts_with(|c: char| c.is_ascii_digit())
        };
        for b in crate::app::keymap::help_for(view).iter().filter(listed) {
            let last = b.help.split_whitespace().last().unwrap_or_default();
            assert!(flat.contains(last), "{view:?}: {:?} cut:\n{out}", b.help);
        }
    }
    let mut s = incident(true);
    s.view = View::Inventory;
    press(&mut s, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&mut s, 80, 24));
}

/// The endpoint stops answering: the refresh lists nothing anywhere. The console keeps
/// every key and secret last listed, each marked `~`, the title says since when, and the
/// status line says why; nothing reads as "no keys".
#[test]
fn a_refresh_that_cannot_list_keeps_the_last_listing_marked() {
    use crate::domain::inventory::{ListingFailure, ReadFailure};
    let mut s = state(false);
    let before = s.rows().len();
    let listed_at = s.inventory.as_ref().and_then(|i| i.fetched_at).expect("listed");
    let unreachable = "kms:ListKeys in REGION failed: endpoint unreachable";
    let failed = Inventory {
        regions: ["eu-north-1", "eu-west-1"]
            .into_iter()
            .map(|region| RegionInventory {
                region: region.into(),
                problems: vec![unreachable.replace("REGION", region)],
                unlisted: ["kms:ListKeys", "secretsmanager:ListSecrets"]
                    .into_iter()
                    .map(|call| ListingFailure {
                        region: region.into(),
                        call: call.into(),
                        failure: ReadFailure::Failed("endpoint unreachable".into()),
                        carried_from: None,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        fetched_at: Some(now()),
    };
    update(&mut s, Msg::InventoryLoaded(failed));
    assert_eq!(s.rows().len(), before, "nothing dropped");
    let out = render(&mut s, 120, 24);
    assert!(out.contains(&format!("~ as listed {} UTC: listing failed", listed_at.format("%H:%M"))), "{out}");
    assert!(out.contains("~drop-kyc-key") && out.contains("~JWT_SECRET"), "{out}");
    assert!(out.contains("endpoint unreachable"), "the status line says why:\n{out}");
    assert!(!out.contains("no keys or secrets"), "{out}");
    assert!(out.contains("listing failed") && !out.contains("refreshed"), "the header says so too:\n{out}");
}
