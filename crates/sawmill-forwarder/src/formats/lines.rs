//! Plain text, the format of last resort: each non-blank line becomes one event whose
//! message is the line, exactly as written.

use super::Event;
use serde_json::Value;

/// The event of one line.
pub(super) fn event(line: &str) -> Event {
    let mut event = Event::with_capacity(1);
    event.insert("message".to_owned(), Value::String(line.to_owned()));
    event
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;

    #[test]
    fn one_event_per_line() {
        let data = b"first line\r\n\r\n  indented, kept as is  \nlast without newline";
        let (events, stats) = parse_all(Format::Lines, data);
        assert_eq!((stats.records, stats.errors), (3, 0));
        assert_eq!(events[0]["message"], "first line");
        assert_eq!(events[1]["message"], "  indented, kept as is  ");
        assert_eq!(events[2]["message"], "last without newline");
        assert!(events.iter().all(|e| e.len() == 1));
    }
}
