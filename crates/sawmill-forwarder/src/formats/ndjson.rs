//! Newline-delimited JSON: each line holds a JSON object, kept as it is. Objects written
//! back to back on one line (as Kinesis Data Firehose concatenates records when no
//! delimiter is configured) are each an event.

use serde_json::Value;

use super::{Event, Sink};

/// Emits each JSON object of a line, turned into its event by `to_event`. A value that is
/// not an object is emitted as an unparsable record, and so is text that is not JSON (from
/// where it starts to the end of the line).
pub(super) fn each_object(line: &str, sink: &mut Sink<'_>, to_event: fn(Event) -> Event) {
    let mut values = serde_json::Deserializer::from_str(line).into_iter::<Value>();
    loop {
        let start = values.byte_offset();
        match values.next() {
            None => return,
            Some(Ok(Value::Object(record))) => sink.record(to_event(record)),
            Some(Ok(other)) => sink.error(
                line[start..values.byte_offset()].trim(),
                format!(
                    "expected a JSON object, found {}",
                    sawmill_core::time::json_kind(&other)
                ),
            ),
            Some(Err(e)) => {
                sink.error(line[start..].trim(), format!("invalid JSON: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use serde_json::json;

    #[test]
    fn objects_are_kept_as_they_are() {
        let data = b"{\"ts\":1714564800,\"msg\":\"disk full\",\"http\":{\"status\":503}}\r\n\r\n{\"level\":\"info\",\"source\":\"app\"}\n";
        let (events, stats) = parse_all(Format::Ndjson, data);
        assert_eq!((stats.records, stats.errors), (2, 0));
        assert_eq!(
            serde_json::Value::Object(events[0].clone()),
            json!({"ts": 1714564800, "msg": "disk full", "http": {"status": 503}})
        );
        assert_eq!(events[1]["level"], "info");
    }

    #[test]
    fn concatenated_objects_on_one_line() {
        let data = br#"{"a":1}{"a":2} {"a":3}"#;
        let (events, stats) = parse_all(Format::Ndjson, data);
        assert_eq!((stats.records, stats.errors), (3, 0));
        assert_eq!(events[2]["a"], 3);
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let data = b"{\"a\":1}\n{\"a\":2,\"b\":\nplain text\n[1,2]\n{\"a\":3} 42 {\"a\":4}\n{\"a\":5}{oops}\n{\"a\":6}\n";
        let (events, stats) = parse_all(Format::Ndjson, data);
        let summary: Vec<String> = events
            .iter()
            .map(|e| match e.get("parse_error") {
                Some(why) => format!("{} <- {}", e["message"], why),
                None => format!("a={}", e["a"]),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "a=1",
                "\"{\\\"a\\\":2,\\\"b\\\":\" <- \"invalid JSON: EOF while parsing a value at line 1 column 11\"",
                "\"plain text\" <- \"invalid JSON: expected value at line 1 column 1\"",
                "\"[1,2]\" <- \"expected a JSON object, found an array\"",
                "a=3",
                "\"42\" <- \"expected a JSON object, found a number\"",
                "a=4",
                "a=5",
                "\"{oops}\" <- \"invalid JSON: key must be a string at line 1 column 9\"",
                "a=6",
            ]
        );
        assert_eq!((stats.records, stats.errors), (10, 5));
    }
}
