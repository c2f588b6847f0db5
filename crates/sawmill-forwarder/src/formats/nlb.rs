//! Network Load Balancer access log entries (written for TLS listeners only): fields
//! separated by single spaces, none quoted, in the order AWS documents them. As for the ALB,
//! new fields are appended over time: fewer or more trailing fields are accepted.

use std::borrow::Cow;

use super::{put_fields, utc_time, Event, Kind, RecordError};
use serde_json::Value;

/// The fields of an entry, in order (`client:port` and `destination:port` become
/// `client_ip`, `client_port`, `destination_ip`, `destination_port`).
const FIELDS: &[(&str, Kind)] = &[
    ("type", Kind::Text),
    ("version", Kind::Text),
    ("time", Kind::Text),
    ("elb", Kind::Text),
    ("listener", Kind::Text),
    (
        "client:port",
        Kind::Addr {
            ip: "client_ip",
            port: "client_port",
        },
    ),
    (
        "destination:port",
        Kind::Addr {
            ip: "destination_ip",
            port: "destination_port",
        },
    ),
    ("connection_time", Kind::Number),
    ("tls_handshake_time", Kind::Number),
    ("received_bytes", Kind::Number),
    ("sent_bytes", Kind::Number),
    ("incoming_tls_alert", Kind::Number),
    ("chosen_cert_arn", Kind::Text),
    ("chosen_cert_serial", Kind::Text),
    ("tls_cipher", Kind::Text),
    ("tls_protocol_version", Kind::Text),
    ("tls_named_group", Kind::Text),
    ("domain_name", Kind::Text),
    ("alpn_fe_protocol", Kind::Text),
    ("alpn_be_protocol", Kind::Text),
    ("alpn_client_preference_list", Kind::Text),
    ("tls_connection_creation_time", Kind::Text),
];

/// Entries have at least the fields up to `sent_bytes`.
const MIN_FIELDS: usize = 11;

/// Parses one entry.
pub(super) fn parse_line(line: &str) -> Result<Event, RecordError> {
    let values: Vec<Cow<'_, str>> = line.split_ascii_whitespace().map(Cow::Borrowed).collect();
    if values.len() < MIN_FIELDS {
        return Err(format!(
            "an NLB access log entry has at least {MIN_FIELDS} fields, this one {}",
            values.len()
        )
        .into());
    }
    // The NLB writes its times without an offset; they are UTC.
    let time = utc_time(&values[2])
        .ok_or_else(|| format!("time: expected an ISO 8601 time, found {:?}", values[2]))?;
    let mut event = Event::with_capacity(FIELDS.len() + 4);
    event.insert("timestamp".to_owned(), Value::String(time.into_owned()));
    event.insert("message".to_owned(), Value::String(line.to_owned()));
    put_fields(&mut event, FIELDS, &values)?;
    Ok(event)
}

/// Whether the tokens of a first line look like an NLB entry.
pub(super) fn looks_like(tokens: &[&str]) -> bool {
    tokens.len() >= 4 && tokens[0] == "tls" && tokens[3].starts_with("net/")
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;

    // The example entries of AWS's "Access logs for your Network Load Balancer", without and
    // with an ALPN policy, one line each as the load balancer writes them, ending with the
    // tls_connection_creation_time that current entries carry.
    const NO_ALPN: &str = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com - - - 2018-12-20T02:59:30";
    const ALPN: &str = "tls 2.0 2020-04-01T08:51:42 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com h2 h2 \"h2\",\"http/1.1\" 2020-04-01T08:51:20";

    #[test]
    fn entry_without_alpn() {
        let (events, stats) = parse_all(Format::Nlb, NO_ALPN.as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        let e = &events[0];
        assert_eq!(e["timestamp"], "2018-12-20T02:59:40Z");
        assert_eq!(e["time"], "2018-12-20T02:59:40");
        assert_eq!(e["message"], NO_ALPN);
        assert_eq!(e["type"], "tls");
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["elb"], "net/my-network-loadbalancer/c6e77e28c25b2234");
        assert_eq!(e["listener"], "g3d4b5e8bb8464cd");
        assert_eq!(e["client_ip"], "72.21.218.154");
        assert_eq!(e["client_port"], 51341);
        assert_eq!(e["destination_ip"], "172.100.100.185");
        assert_eq!(e["destination_port"], 443);
        assert_eq!(e["connection_time"], 5);
        assert_eq!(e["tls_handshake_time"], 2);
        assert_eq!(e["received_bytes"], 98);
        assert_eq!(e["sent_bytes"], 246);
        assert_eq!(
            e["chosen_cert_arn"],
            "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99"
        );
        assert_eq!(e["tls_cipher"], "ECDHE-RSA-AES128-SHA");
        assert_eq!(e["tls_protocol_version"], "tlsv12");
        assert_eq!(
            e["domain_name"],
            "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com"
        );
        assert_eq!(e["tls_connection_creation_time"], "2018-12-20T02:59:30");
        for absent in [
            "incoming_tls_alert",
            "chosen_cert_serial",
            "tls_named_group",
            "alpn_fe_protocol",
            "alpn_be_protocol",
            "alpn_client_preference_list",
        ] {
            assert!(!e.contains_key(absent), "{absent} should be absent");
        }
    }

    #[test]
    fn entry_with_alpn_and_older_entries() {
        // The 2020 layout ended at the ALPN preference list.
        let older = ALPN.rsplit_once(' ').unwrap().0;
        let data = format!("{ALPN}\n{older}\n");
        let (events, stats) = parse_all(Format::Nlb, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (2, 0));
        for e in &events {
            assert_eq!(e["timestamp"], "2020-04-01T08:51:42Z");
            assert_eq!(e["alpn_fe_protocol"], "h2");
            assert_eq!(e["alpn_be_protocol"], "h2");
            assert_eq!(e["alpn_client_preference_list"], "\"h2\",\"http/1.1\"");
        }
        assert_eq!(
            events[0]["tls_connection_creation_time"],
            "2020-04-01T08:51:20"
        );
        assert!(!events[1].contains_key("tls_connection_creation_time"));
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let truncated = &NO_ALPN[..60];
        let bad_bytes = NO_ALPN.replace(" 98 246 ", " 98 lots ");
        let bad_port = NO_ALPN.replace(":51341", ":513419");
        let data = format!("{NO_ALPN}\r\n{truncated}\r\n{bad_bytes}\r\n{bad_port}\r\n{ALPN}");
        let (events, stats) = parse_all(Format::Nlb, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (5, 3));
        assert_eq!(events[0]["client_port"], 51341);
        assert_eq!(events[4]["alpn_fe_protocol"], "h2");
        assert_eq!(events[1]["message"], truncated);
        assert_eq!(
            events[1]["parse_error"],
            "an NLB access log entry has at least 11 fields, this one 4"
        );
        assert_eq!(
            events[2]["parse_error"],
            "sent_bytes: expected a number, found \"lots\""
        );
        assert_eq!(
            events[3]["parse_error"],
            "client:port: expected address:port, found \"72.21.218.154:513419\""
        );
    }
}
