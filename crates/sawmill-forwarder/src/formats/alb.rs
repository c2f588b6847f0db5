//! Application Load Balancer access log entries: space-separated fields, some enclosed in
//! double quotes, in the order AWS documents them. AWS appends new fields at the end over
//! time, so an entry may have fewer trailing fields than listed here (older logs) or more
//! (newer ones, ignored here; the raw line stays in `message`).

use super::{put_fields, split_quoted, utc_time, Event, Kind, RecordError};
use serde_json::Value;

/// The fields of an entry, in order (`client:port` and `target:port` become `client_ip`,
/// `client_port`, `target_ip`, `target_port`; `request` is also split into
/// `request_method`, `request_url` and `request_protocol`).
const FIELDS: &[(&str, Kind)] = &[
    ("type", Kind::Text),
    ("time", Kind::Text),
    ("elb", Kind::Text),
    (
        "client:port",
        Kind::Addr {
            ip: "client_ip",
            port: "client_port",
        },
    ),
    (
        "target:port",
        Kind::Addr {
            ip: "target_ip",
            port: "target_port",
        },
    ),
    ("request_processing_time", Kind::Number),
    ("target_processing_time", Kind::Number),
    ("response_processing_time", Kind::Number),
    ("elb_status_code", Kind::Number),
    ("target_status_code", Kind::Number),
    ("received_bytes", Kind::Number),
    ("sent_bytes", Kind::Number),
    ("request", Kind::Request),
    ("user_agent", Kind::Text),
    ("ssl_cipher", Kind::Text),
    ("ssl_protocol", Kind::Text),
    ("target_group_arn", Kind::Text),
    ("trace_id", Kind::Text),
    ("domain_name", Kind::Text),
    ("chosen_cert_arn", Kind::Text),
    ("matched_rule_priority", Kind::Number),
    ("request_creation_time", Kind::Text),
    ("actions_executed", Kind::Text),
    ("redirect_url", Kind::Text),
    ("error_reason", Kind::Text),
    ("target_port_list", Kind::Text),
    ("target_status_code_list", Kind::Text),
    ("classification", Kind::Text),
    ("classification_reason", Kind::Text),
    ("conn_trace_id", Kind::Text),
];

/// Entries have at least the fields up to the request line.
const MIN_FIELDS: usize = 13;

/// The request types an entry starts with.
const TYPES: &[&str] = &["http", "https", "h2", "grpcs", "ws", "wss"];

/// Parses one entry.
pub(super) fn parse_line(line: &str) -> Result<Event, RecordError> {
    let values = split_quoted(line)?;
    if values.len() < MIN_FIELDS {
        return Err(format!(
            "an ALB access log entry has at least {MIN_FIELDS} fields, this one {}",
            values.len()
        )
        .into());
    }
    let time = utc_time(&values[1])
        .ok_or_else(|| format!("time: expected an ISO 8601 time, found {:?}", values[1]))?;
    let mut event = Event::with_capacity(FIELDS.len() + 8);
    event.insert("timestamp".to_owned(), Value::String(time.into_owned()));
    event.insert("message".to_owned(), Value::String(line.to_owned()));
    put_fields(&mut event, FIELDS, &values)?;
    Ok(event)
}

/// Whether the tokens of a first line look like an ALB entry.
pub(super) fn looks_like(tokens: &[&str]) -> bool {
    tokens.len() >= 3 && TYPES.contains(&tokens[0]) && tokens[2].starts_with("app/")
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use serde_json::json;

    // The example entries of AWS's "Access logs for your Application Load Balancer", one
    // line each as the load balancer writes them.
    const HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;
    const HTTPS: &str = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;
    // An entry of the 2018 layout, which ends at error_reason.
    const H2_OLD: &str = r#"h2 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "GET https://10.0.2.105:773/ HTTP/2.0" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337327-72bd00b0343d75b906739c42" "-" "-" 1 2018-07-02T22:22:48.364000Z "redirect" "https://example.com:80/" "-""#;
    const LAMBDA_FAILED: &str = r#"http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-" "-""#;

    #[test]
    fn http_entry() {
        let (events, stats) = parse_all(Format::Alb, HTTP.as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        let e = &events[0];
        assert_eq!(e["timestamp"], "2018-07-02T22:23:00.186641Z");
        assert_eq!(e["time"], "2018-07-02T22:23:00.186641Z");
        assert_eq!(e["message"], HTTP);
        assert_eq!(e["type"], "http");
        assert_eq!(e["elb"], "app/my-loadbalancer/50dc6c495c0c9188");
        assert_eq!(e["client_ip"], "192.168.131.39");
        assert_eq!(e["client_port"], 2817);
        assert_eq!(e["target_ip"], "10.0.0.1");
        assert_eq!(e["target_port"], 80);
        assert_eq!(e["request_processing_time"], json!(0.0));
        assert_eq!(e["target_processing_time"], json!(0.001));
        assert_eq!(e["response_processing_time"], json!(0.0));
        assert_eq!(e["elb_status_code"], 200);
        assert_eq!(e["target_status_code"], 200);
        assert_eq!(e["received_bytes"], 34);
        assert_eq!(e["sent_bytes"], 366);
        assert_eq!(e["request"], "GET http://www.example.com:80/ HTTP/1.1");
        assert_eq!(e["request_method"], "GET");
        assert_eq!(e["request_url"], "http://www.example.com:80/");
        assert_eq!(e["request_protocol"], "HTTP/1.1");
        assert_eq!(e["user_agent"], "curl/7.46.0");
        assert_eq!(
            e["target_group_arn"],
            "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"
        );
        assert_eq!(e["trace_id"], "Root=1-58337262-36d228ad5d99923122bbe354");
        assert_eq!(e["matched_rule_priority"], 0);
        assert_eq!(e["request_creation_time"], "2018-07-02T22:22:48.364000Z");
        assert_eq!(e["actions_executed"], "forward");
        assert_eq!(e["target_port_list"], "10.0.0.1:80");
        assert_eq!(e["target_status_code_list"], "200");
        assert_eq!(e["conn_trace_id"], "TID_1234abcd5678ef90");
        // "-" is AWS's "no value": those fields are left out.
        for absent in [
            "ssl_cipher",
            "ssl_protocol",
            "domain_name",
            "chosen_cert_arn",
            "redirect_url",
            "error_reason",
            "classification",
            "classification_reason",
            "source",
        ] {
            assert!(!e.contains_key(absent), "{absent} should be absent");
        }
    }

    #[test]
    fn https_entry() {
        let (events, _) = parse_all(Format::Alb, HTTPS.as_bytes());
        let e = &events[0];
        assert_eq!(e["type"], "https");
        assert_eq!(e["request_processing_time"], json!(0.086));
        assert_eq!(e["target_processing_time"], json!(0.048));
        assert_eq!(e["response_processing_time"], json!(0.037));
        assert_eq!(e["received_bytes"], 0);
        assert_eq!(e["sent_bytes"], 57);
        assert_eq!(e["request_url"], "https://www.example.com:443/");
        assert_eq!(e["ssl_cipher"], "ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(e["ssl_protocol"], "TLSv1.2");
        assert_eq!(e["domain_name"], "www.example.com");
        assert_eq!(
            e["chosen_cert_arn"],
            "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
        );
        assert_eq!(e["matched_rule_priority"], 1);
        assert_eq!(e["actions_executed"], "authenticate,forward");
    }

    #[test]
    fn older_entries_with_fewer_fields() {
        let (events, stats) = parse_all(Format::Alb, H2_OLD.as_bytes());
        assert_eq!(stats.errors, 0);
        let e = &events[0];
        assert_eq!(e["type"], "h2");
        assert_eq!(e["client_ip"], "10.0.1.252");
        assert_eq!(e["client_port"], 48160);
        assert_eq!(e["target_port"], 9000);
        assert_eq!(e["request_protocol"], "HTTP/2.0");
        assert_eq!(e["actions_executed"], "redirect");
        assert_eq!(e["redirect_url"], "https://example.com:80/");
        assert!(!e.contains_key("error_reason"));
        assert!(!e.contains_key("conn_trace_id"));

        // The first ALB layout ended at the trace id.
        let first = r#"http 2016-08-10T22:08:42.945958Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354""#;
        let (events, stats) = parse_all(Format::Alb, first.as_bytes());
        assert_eq!(stats.errors, 0);
        assert_eq!(
            events[0]["trace_id"],
            "Root=1-58337262-36d228ad5d99923122bbe354"
        );
        assert!(!events[0].contains_key("domain_name"));
    }

    #[test]
    fn newer_entries_with_more_fields() {
        let line = format!("{HTTP} \"new-field\" 42");
        let (events, stats) = parse_all(Format::Alb, line.as_bytes());
        assert_eq!(stats.errors, 0);
        assert_eq!(events[0]["conn_trace_id"], "TID_1234abcd5678ef90");
        assert_eq!(events[0]["message"], line.as_str());
    }

    #[test]
    fn lambda_target_without_target_address_or_status() {
        let (events, _) = parse_all(Format::Alb, LAMBDA_FAILED.as_bytes());
        let e = &events[0];
        assert_eq!(e["elb_status_code"], 502);
        assert!(!e.contains_key("target_ip"));
        assert!(!e.contains_key("target_port"));
        assert!(!e.contains_key("target_status_code"));
        assert_eq!(e["error_reason"], "LambdaInvalidResponse");
        assert!(!e.contains_key("conn_trace_id"));
    }

    #[test]
    fn no_response_times_stay_minus_one() {
        let line = r#"https 2024-03-01T10:00:00.000000Z app/my-loadbalancer/50dc6c495c0c9188 [2001:db8::1]:40000 - -1 -1 -1 460 - 120 0 "- http://www.example.com:80- -" "-" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "-" "-" "-" - 2024-03-01T09:59:59.000000Z "-" "-" "-" "-" "-" "-" "-" -"#;
        let (events, stats) = parse_all(Format::Alb, line.as_bytes());
        assert_eq!(stats.errors, 0, "{:?}", events[0].get("parse_error"));
        let e = &events[0];
        assert_eq!(e["request_processing_time"], json!(-1));
        assert_eq!(e["target_processing_time"], json!(-1));
        assert_eq!(e["response_processing_time"], json!(-1));
        assert_eq!(e["elb_status_code"], 460);
        assert_eq!(e["client_ip"], "2001:db8::1");
        assert_eq!(e["client_port"], 40000);
        // A malformed request line: only what is there.
        assert_eq!(e["request"], "- http://www.example.com:80- -");
        assert!(!e.contains_key("request_method"));
        assert_eq!(e["request_url"], "http://www.example.com:80-");
        assert!(!e.contains_key("request_protocol"));
        assert!(!e.contains_key("user_agent"));
        assert!(!e.contains_key("matched_rule_priority"));
    }

    #[test]
    fn escaped_quotes_in_user_agent() {
        let line = HTTP.replace(r#""curl/7.46.0""#, r#""Mozilla/5.0 \"quoted\" (X11)""#);
        let (events, stats) = parse_all(Format::Alb, line.as_bytes());
        assert_eq!(stats.errors, 0);
        assert_eq!(events[0]["user_agent"], r#"Mozilla/5.0 "quoted" (X11)"#);
        assert_eq!(
            events[0]["trace_id"],
            "Root=1-58337262-36d228ad5d99923122bbe354"
        );
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let truncated = &HTTPS[..HTTPS.find("www.example.com:443").unwrap()];
        let bad_status = HTTP.replace(" 200 200 ", " 2x0 200 ");
        let bad_time = HTTP.replace("2018-07-02T22:23:00.186641Z app", "yesterday app");
        let data = format!(
            "{HTTP}\r\n{truncated}\r\n{HTTPS}\r\nnot an access log\r\n{bad_status}\r\n{bad_time}\r\n{LAMBDA_FAILED}\r\n"
        );
        let (events, stats) = parse_all(Format::Alb, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (7, 4));
        assert_eq!(events[0]["request_url"], "http://www.example.com:80/");
        assert_eq!(events[0]["conn_trace_id"], "TID_1234abcd5678ef90");
        assert_eq!(events[2]["ssl_protocol"], "TLSv1.2");
        assert_eq!(events[6]["error_reason"], "LambdaInvalidResponse");

        assert_eq!(events[1]["message"], truncated);
        assert_eq!(
            events[1]["parse_error"],
            "field 13 has no closing quote (truncated entry?)"
        );
        assert_eq!(events[1].len(), 2);
        assert_eq!(events[3]["message"], "not an access log");
        assert_eq!(
            events[3]["parse_error"],
            "an ALB access log entry has at least 13 fields, this one 4"
        );
        assert_eq!(events[4]["message"], bad_status.as_str());
        assert_eq!(
            events[4]["parse_error"],
            "elb_status_code: expected a number, found \"2x0\""
        );
        assert_eq!(
            events[5]["parse_error"],
            "time: expected an ISO 8601 time, found \"yesterday\""
        );
    }
}
