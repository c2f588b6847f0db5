//! CloudTrail log files: one JSON document, `{"Records": [...]}`, each record an API event
//! kept as it is, with `timestamp` from its `eventTime` and a one-line `message`:
//! `<eventSource> <eventName> by <who>`, and ` failed: <errorCode>` when it failed.
//!
//! The document is checked whole first (a syntax error emits nothing), then read a second
//! time, emitting each record as it is read, so only one record is held as a JSON value at
//! a time.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Event, ParseError, Sink};

/// Emits the records of a CloudTrail log file.
pub(super) fn parse(text: &str, sink: &mut Sink<'_>) -> Result<(), ParseError> {
    serde_json::from_str::<IgnoredAny>(text).map_err(ParseError::NotJson)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let found = FileSeed { sink }
        .deserialize(&mut deserializer)
        .map_err(ParseError::NotCloudTrail)?;
    if found {
        Ok(())
    } else {
        Err(ParseError::NoRecords)
    }
}

/// The top-level object; deserializes to whether it had a `Records` array.
struct FileSeed<'s, 'e> {
    sink: &'s mut Sink<'e>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a \"Records\" array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                map.next_value_seed(RecordsSeed {
                    sink: &mut *self.sink,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The `Records` array: each element is emitted as it is read.
struct RecordsSeed<'s, 'e> {
    sink: &'s mut Sink<'e>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a \"Records\" array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Value>()? {
            match record {
                Value::Object(record) => self.sink.record(event(record)),
                other => self.sink.error(
                    &other.to_string(),
                    "a CloudTrail record must be a JSON object".to_owned(),
                ),
            }
        }
        Ok(())
    }
}

/// The event of one record: its own fields after `timestamp` and `message`.
fn event(record: Map<String, Value>) -> Event {
    let mut event = Event::with_capacity(record.len() + 2);
    if let Some(time) = text(&record, "eventTime") {
        event.insert("timestamp".to_owned(), Value::String(time.to_owned()));
    }
    event.insert("message".to_owned(), Value::String(summary(&record)));
    event.extend(record);
    event
}

/// `<eventSource> <eventName> by <who>[ failed: <errorCode>]`, where who is the caller's
/// ARN, else the service that called on its behalf, else its identity type.
fn summary(record: &Map<String, Value>) -> String {
    let source = text(record, "eventSource").unwrap_or("-");
    let name = text(record, "eventName").unwrap_or("-");
    let identity = record.get("userIdentity").and_then(Value::as_object);
    let who = identity
        .and_then(|id| {
            text(id, "arn")
                .or_else(|| text(id, "invokedBy"))
                .or_else(|| text(id, "type"))
        })
        .unwrap_or("-");
    let mut summary = format!("{source} {name} by {who}");
    if let Some(code) = text(record, "errorCode") {
        summary.push_str(" failed: ");
        summary.push_str(code);
    }
    summary
}

/// A non-empty string field.
fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::{parse, Format};
    use serde_json::json;

    /// Records of AWS's "CloudTrail log file examples" (EC2 StartInstances, IAM
    /// AddUserToGroup and the UpdateTrail error example) in one file, as CloudTrail writes
    /// it: a single line.
    const FILE: &str = r#"{"Records":[{"eventVersion":"1.0","userIdentity":{"type":"IAMUser","principalId":"EX_PRINCIPAL_ID","arn":"arn:aws:iam::123456789012:user/Alice","accessKeyId":"EXAMPLE_KEY_ID","accountId":"123456789012","userName":"Alice"},"eventTime":"2014-03-06T21:22:54Z","eventSource":"ec2.amazonaws.com","eventName":"StartInstances","awsRegion":"us-east-2","sourceIPAddress":"205.251.233.176","userAgent":"ec2-api-tools 1.6.12.2","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-ebeaf9e2"}]}},"responseElements":{"instancesSet":{"items":[{"instanceId":"i-ebeaf9e2","currentState":{"code":0,"name":"pending"},"previousState":{"code":80,"name":"stopped"}}]}}},{"eventVersion":"1.0","userIdentity":{"type":"IAMUser","principalId":"EX_PRINCIPAL_ID","arn":"arn:aws:iam::123456789012:user/Alice","accountId":"123456789012","accessKeyId":"EXAMPLE_KEY_ID","userName":"Alice","sessionContext":{"attributes":{"mfaAuthenticated":"false","creationDate":"2014-03-25T18:45:11Z"}}},"eventTime":"2014-03-25T21:08:14Z","eventSource":"iam.amazonaws.com","eventName":"AddUserToGroup","awsRegion":"us-east-2","sourceIPAddress":"127.0.0.1","userAgent":"AWSConsole","requestParameters":{"userName":"Bob","groupName":"admin"},"responseElements":null},{"eventVersion":"1.04","userIdentity":{"type":"IAMUser","principalId":"EX_PRINCIPAL_ID","arn":"arn:aws:iam::123456789012:user/Alice","accountId":"123456789012","accessKeyId":"EXAMPLE_KEY_ID","userName":"Alice"},"eventTime":"2016-07-14T19:15:45Z","eventSource":"cloudtrail.amazonaws.com","eventName":"UpdateTrail","awsRegion":"us-east-2","sourceIPAddress":"205.251.233.182","userAgent":"aws-cli/1.10.32 Python/2.7.9 Windows/7 botocore/1.4.22","errorCode":"TrailNotFoundException","errorMessage":"Unknown trail: myTrail2 for the user: 123456789012","requestParameters":{"name":"myTrail2"},"responseElements":null,"requestID":"5d40662a-49f7-11e6-97e4-d9cb6ff7d6a3","eventID":"b7d4398e-b2f0-4faa-9c76-e2d316a8d67f","eventType":"AwsApiCall","recipientAccountId":"123456789012"}]}"#;

    #[test]
    fn records_of_a_log_file() {
        let (events, stats) = parse_all(Format::CloudTrail, FILE.as_bytes());
        assert_eq!((stats.records, stats.errors), (3, 0));

        let e = &events[0];
        assert_eq!(e["timestamp"], "2014-03-06T21:22:54Z");
        assert_eq!(
            e["message"],
            "ec2.amazonaws.com StartInstances by arn:aws:iam::123456789012:user/Alice"
        );
        // The record's own JSON, as it is.
        assert_eq!(e["eventTime"], "2014-03-06T21:22:54Z");
        assert_eq!(e["userIdentity"]["userName"], "Alice");
        assert_eq!(e["sourceIPAddress"], "205.251.233.176");
        assert_eq!(
            e["responseElements"]["instancesSet"]["items"][0]["previousState"],
            json!({"code": 80, "name": "stopped"})
        );
        assert_eq!(e.len(), 12);
        assert_eq!(
            e.keys().take(2).collect::<Vec<_>>(),
            ["timestamp", "message"]
        );

        assert_eq!(
            events[1]["message"],
            "iam.amazonaws.com AddUserToGroup by arn:aws:iam::123456789012:user/Alice"
        );
        assert_eq!(events[1]["requestParameters"]["groupName"], "admin");
        assert_eq!(events[1]["responseElements"], json!(null));

        let e = &events[2];
        assert_eq!(e["timestamp"], "2016-07-14T19:15:45Z");
        assert_eq!(
            e["message"],
            "cloudtrail.amazonaws.com UpdateTrail by arn:aws:iam::123456789012:user/Alice failed: TrailNotFoundException"
        );
        assert_eq!(
            e["errorMessage"],
            "Unknown trail: myTrail2 for the user: 123456789012"
        );
    }

    #[test]
    fn pretty_printed_file_and_other_callers() {
        let data = r#"{
            "Records": [
                {
                    "eventTime": "2026-11-27T08:00:00Z",
                    "eventSource": "sts.amazonaws.com",
                    "eventName": "AssumeRole",
                    "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}
                },
                {"eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                 "userIdentity": {"type": "AWSAccount"}, "errorCode": "AccessDenied"},
                {"eventName": "ConsoleLogin"},
                "not a record"
            ],
            "digest": {"ignored": [1, 2, 3]}
        }"#;
        let (events, stats) = parse_all(Format::CloudTrail, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (4, 1));
        assert_eq!(
            events[0]["message"],
            "sts.amazonaws.com AssumeRole by lambda.amazonaws.com"
        );
        assert_eq!(
            events[1]["message"],
            "s3.amazonaws.com GetObject by AWSAccount failed: AccessDenied"
        );
        assert!(!events[1].contains_key("timestamp"));
        assert_eq!(events[2]["message"], "- ConsoleLogin by -");
        assert_eq!(events[3]["message"], "\"not a record\"");
        assert_eq!(
            events[3]["parse_error"],
            "a CloudTrail record must be a JSON object"
        );
    }

    #[test]
    fn empty_records() {
        let (events, stats) = parse_all(Format::CloudTrail, br#"{"Records":[]}"#);
        assert!(events.is_empty());
        assert_eq!(stats.records, 0);
    }

    #[test]
    fn invalid_files_emit_nothing() {
        let truncated = &FILE[..FILE.len() / 2];
        for (data, expected) in [
            (
                truncated,
                "not a valid CloudTrail log file: EOF while parsing",
            ),
            (
                "{\"Records\":[{}]} trailing",
                "not a valid CloudTrail log file: trailing characters",
            ),
            (
                "[{\"eventName\":\"x\"}]",
                "not a CloudTrail log file: invalid type: sequence",
            ),
            (
                "{\"Records\":{}}",
                "not a CloudTrail log file: invalid type: map, expected a \"Records\" array",
            ),
            (
                "{\"awsAccountId\":\"123456789012\"}",
                "not a CloudTrail log file: it has no \"Records\" array",
            ),
        ] {
            let mut emitted = 0;
            let err = parse(Format::CloudTrail, data.as_bytes(), &mut |_| emitted += 1)
                .map_err(|e| sawmill_core::error::report(&e))
                .unwrap_err();
            assert!(err.starts_with(expected), "{err}");
            assert_eq!(emitted, 0);
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let data = b"{\"Records\":[{\"eventName\":\"Put\xFFObject\",\"eventSource\":\"s3.amazonaws.com\"}]}";
        let (events, stats) = parse_all(Format::CloudTrail, data);
        assert_eq!(stats.records, 1);
        assert_eq!(events[0]["eventName"], "Put\u{FFFD}Object");
        assert_eq!(
            events[0]["message"],
            "s3.amazonaws.com Put\u{FFFD}Object by -"
        );
    }
}
