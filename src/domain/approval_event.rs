//! How a CloudTrail record on keydeck's approval store reads (issue 11: "their events get
//! their own label in the feed"). A request is the secret `keydeck/approvals/<id>`; its
//! state is the version holding `AWSCURRENT`, whose id (the *state token*) names the state:
//! `proposed-<id>` when created, `<state>-<id>-<nonce>` after each transition (see
//! `aws::approvals`). So a record's call and its `requestParameters` say which transition
//! it is, without reading any secret value:
//!
//! | call | label |
//! |---|---|
//! | CreateSecret | `approval proposed` |
//! | PutSecretValue (`clientRequestToken` = the next state's token) | `approval prep <state>` |
//! | UpdateSecretVersionStage (`moveToVersionId` = the new state's token) | `approval <state>` |
//! | TagResource | `approval note` |
//! | DescribeSecret, ListSecretVersionIds, GetSecretValue, ListSecrets | `approval read` |
//! | DeleteSecret | `approval deleted` |
//!
//! A refused call keeps its label (the outcome column says it failed): a lost race reads
//! as `approval approved` with `InvalidParameterException`.

use std::borrow::Cow;

use serde_json::Value;

use super::inventory::APPROVALS_PREFIX;
use super::reference::secret_name;
use super::trail::{TrailEvent, SECRETS_SOURCE};

/// The state a state token names: `proposed-<id>` → `proposed`; `approved-<id>-<nonce>`
/// → `approved` (likewise `rejected`, `withdrawn`, `executed`); anything else → `None`.
pub fn state_word<'a>(token: &'a str, id: &str) -> Option<&'a str> {
    if token.strip_prefix("proposed-") == Some(id) {
        return Some("proposed");
    }
    let (word, rest) = token.split_once('-')?;
    let ok = matches!(word, "approved" | "rejected" | "withdrawn" | "executed")
        && rest.strip_prefix(id).is_some_and(|nonce| nonce.starts_with('-') && nonce.len() > 1);
    ok.then_some(word)
}

/// The request id an approval-store secret reference names (`keydeck/approvals/<id>`, by
/// name or ARN), `None` for any other secret.
pub fn request_id(secret_ref: &str) -> Option<&str> {
    secret_name(secret_ref).strip_prefix(APPROVALS_PREFIX).filter(|id| !id.is_empty())
}

/// The feed label of a Secrets Manager record on an approval request (table above);
/// `None` for any other record. Reads `requestParameters` from the record as received.
pub fn label(ev: &TrailEvent) -> Option<String> {
    if ev.event_source != SECRETS_SOURCE {
        return None;
    }
    let id = request_id(ev.secret_ref.as_deref()?)?;
    let params = || -> Option<Value> {
        let v: Value = serde_json::from_str(&ev.raw).ok()?;
        v.get("requestParameters").cloned()
    };
    let token_state = |field: &str| -> String {
        params()
            .and_then(|p| p.get(field).and_then(Value::as_str).and_then(|t| state_word(t, id)).map(str::to_owned))
            .unwrap_or_else(|| "state".into())
    };
    let what = match ev.event_name.as_str() {
        "CreateSecret" => "proposed".to_owned(),
        "PutSecretValue" => format!("prep {}", token_state("clientRequestToken")),
        "UpdateSecretVersionStage" => token_state("moveToVersionId"),
        "TagResource" | "UntagResource" => "note".into(),
        "DescribeSecret" | "ListSecretVersionIds" | "GetSecretValue" | "ListSecrets" => "read".into(),
        "DeleteSecret" => "deleted".into(),
        other => other.to_owned(),
    };
    Some(format!("approval {what}"))
}

/// Does this record change an approval request (propose, a state move, its note, its
/// deletion), as opposed to reading it? Reads by the consoles themselves must not make
/// them list the store again.
pub fn changes_request(ev: &TrailEvent) -> bool {
    let read = ["Describe", "List", "Get", "BatchGet"].iter().any(|p| ev.event_name.starts_with(p));
    ev.event_source == SECRETS_SOURCE && !read && ev.secret_ref.as_deref().and_then(request_id).is_some()
}

/// What the feed shows in its Event column: the [`label`] of an approval-store record,
/// else the record's `eventName`.
pub fn event_label(ev: &TrailEvent) -> Cow<'_, str> {
    match label(ev) {
        Some(l) => Cow::Owned(l),
        None => Cow::Borrowed(&ev.event_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trail::parse_event;
    use serde_json::json;

    const ID: &str = "20261129-101500-ab12cd34";

    fn record(name: &str, params: Value, error: Option<&str>) -> TrailEvent {
        let mut r = json!({
            "eventVersion": "1.08",
            "eventID": format!("e-{name}"),
            "eventTime": "2026-11-29T10:15:00Z",
            "eventName": name,
            "eventSource": "secretsmanager.amazonaws.com",
            "awsRegion": "eu-north-1",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/security-lead",
                             "accountId": "111122223333", "userName": "security-lead"},
            "requestParameters": params,
            "responseElements": null,
            "eventType": "AwsApiCall",
        });
        if let Some(code) = error {
            r["errorCode"] = json!(code);
        }
        parse_event(&r.to_string()).expect("record parses")
    }

    #[test]
    fn state_tokens_name_their_state_and_nothing_else() {
        assert_eq!(state_word(&format!("proposed-{ID}"), ID), Some("proposed"));
        for w in ["approved", "rejected", "withdrawn", "executed"] {
            assert_eq!(state_word(&format!("{w}-{ID}-0a1b2c3d"), ID), Some(w));
        }
        assert_eq!(state_word(&format!("approved-{ID}"), ID), None, "no nonce");
        assert_eq!(state_word(&format!("approved-{ID}-"), ID), None, "empty nonce");
        assert_eq!(state_word("approved-other-id-0000", ID), None, "another request's token");
        assert_eq!(state_word(&format!("deleted-{ID}-0000"), ID), None, "not a state");
        assert_eq!(state_word(&format!("proposed-{ID}x"), ID), None);
        assert_eq!(state_word("garbage", ID), None);
    }

    #[test]
    fn each_transition_of_the_store_gets_its_own_label() {
        let secret = format!("keydeck/approvals/{ID}");
        let arn = format!("arn:aws:secretsmanager:eu-north-1:111122223333:secret:{secret}-AbC123");
        let cases = [
            ("CreateSecret", json!({"name": secret, "description": "{}"}), "approval proposed"),
            (
                "PutSecretValue",
                json!({"secretId": secret, "clientRequestToken": format!("approved-{ID}-77aa")}),
                "approval prep approved",
            ),
            (
                "UpdateSecretVersionStage",
                json!({"secretId": arn, "versionStage": "AWSCURRENT",
                       "moveToVersionId": format!("approved-{ID}-77aa"),
                       "removeFromVersionId": format!("proposed-{ID}")}),
                "approval approved",
            ),
            (
                "UpdateSecretVersionStage",
                json!({"secretId": secret, "moveToVersionId": format!("executed-{ID}-88bb")}),
                "approval executed",
            ),
            (
                "UpdateSecretVersionStage",
                json!({"secretId": secret, "moveToVersionId": format!("rejected-{ID}-99cc")}),
                "approval rejected",
            ),
            (
                "UpdateSecretVersionStage",
                json!({"secretId": secret, "moveToVersionId": format!("withdrawn-{ID}-11dd")}),
                "approval withdrawn",
            ),
            ("UpdateSecretVersionStage", json!({"secretId": secret, "moveToVersionId": "forged"}), "approval state"),
            ("TagResource", json!({"secretId": secret, "tags": []}), "approval note"),
            ("DescribeSecret", json!({"secretId": arn}), "approval read"),
            ("ListSecretVersionIds", json!({"secretId": secret}), "approval read"),
            ("DeleteSecret", json!({"secretId": secret}), "approval deleted"),
            ("RestoreSecret", json!({"secretId": secret}), "approval RestoreSecret"),
        ];
        for (name, params, want) in cases {
            let ev = record(name, params.clone(), None);
            assert_eq!(label(&ev).as_deref(), Some(want), "{name} {params}");
            assert_eq!(changes_request(&ev), want != "approval read", "{name}: a read changes nothing");
        }
        let lost = record(
            "UpdateSecretVersionStage",
            json!({"secretId": secret, "moveToVersionId": format!("approved-{ID}-22ee")}),
            Some("InvalidParameterException"),
        );
        assert_eq!(label(&lost).as_deref(), Some("approval approved"), "a lost race keeps its label");
        assert_eq!(lost.outcome(), "InvalidParameterException");
    }

    #[test]
    fn other_secrets_and_other_services_get_no_label() {
        assert_eq!(label(&record("GetSecretValue", json!({"secretId": "JWT_SECRET"}), None)), None);
        assert_eq!(label(&record("CreateSecret", json!({"name": "keydeck/approvals/"}), None)), None, "no id");
        assert_eq!(label(&record("CreateSecret", json!({"name": "keydeck/approvalsX/1"}), None)), None);
        let mut kms = record("CreateSecret", json!({"name": format!("keydeck/approvals/{ID}")}), None);
        kms.event_source = "kms.amazonaws.com".into();
        assert_eq!(label(&kms), None);
        assert_eq!(
            request_id(&format!("arn:aws:secretsmanager:eu-north-1:1:secret:keydeck/approvals/{ID}-AbC123")),
            Some(ID)
        );
    }
}
