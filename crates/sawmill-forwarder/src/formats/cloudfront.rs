//! CloudFront standard (access) logs: the W3C extended log file format, tab-separated
//! values named by the `#Fields:` header line (`cs(User-Agent)` becomes `cs_user_agent`).
//! Values stay URL-encoded as CloudFront writes them. A file without a `#Fields:` header is
//! read with the 33 fields AWS documents.

use super::{is_absent, put_number, put_text, snake_case, utc_time, Event, RecordError, Sink};
use serde_json::Value;

/// The documented fields of a standard log file, in order.
const DEFAULT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

/// The fields whose values are numbers (attribute names).
const NUMERIC_FIELDS: &[&str] = &[
    "sc_bytes",
    "sc_status",
    "cs_bytes",
    "time_taken",
    "fle_encrypted_fields",
    "c_port",
    "time_to_first_byte",
    "sc_content_len",
    "sc_range_start",
    "sc_range_end",
];

/// One field of the current layout.
struct Field {
    name: String,
    numeric: bool,
}

/// The layout of the records that follow: from the last `#Fields:` line, or the default.
pub(super) struct CloudFront {
    fields: Vec<Field>,
    date_index: Option<usize>,
    time_index: Option<usize>,
}

impl CloudFront {
    pub(super) fn new() -> Self {
        let mut parser = CloudFront {
            fields: Vec::new(),
            date_index: None,
            time_index: None,
        };
        parser.set_fields(DEFAULT_FIELDS);
        parser
    }

    fn set_fields(&mut self, names: &str) {
        self.fields = names
            .split_ascii_whitespace()
            .map(|name| {
                let name = snake_case(name);
                Field {
                    numeric: NUMERIC_FIELDS.contains(&name.as_str()),
                    name,
                }
            })
            .collect();
        let index_of = |wanted: &str| self.fields.iter().position(|f| f.name == wanted);
        self.date_index = index_of("date");
        self.time_index = index_of("time");
    }

    /// Parses one line: a `#Fields:` line sets the layout, other `#` lines are directives
    /// to skip, any other line is a record.
    pub(super) fn line(&mut self, line: &str, sink: &mut Sink<'_>) {
        if let Some(directive) = line.strip_prefix('#') {
            if let Some(names) = directive.strip_prefix("Fields:") {
                self.set_fields(names);
            }
            return;
        }
        match self.record(line) {
            Ok(event) => sink.record(event),
            Err(why) => sink.error(line, why.0),
        }
    }

    fn record(&self, line: &str) -> Result<Event, RecordError> {
        let values: Vec<&str> = line.split('\t').collect();
        // Extra values (a trailing tab) are ignored.
        if values.len() < self.fields.len() {
            return Err(format!(
                "expected {} tab-separated fields, found {}",
                self.fields.len(),
                values.len()
            )
            .into());
        }
        let mut event = Event::with_capacity(self.fields.len() + 2);
        if let (Some(date), Some(time)) = (self.date_index, self.time_index) {
            let (date, time) = (values[date], values[time]);
            if !is_absent(date) && !is_absent(time) {
                let timestamp = format!("{date}T{time}Z");
                if utc_time(&timestamp).is_none() {
                    return Err(format!(
                        "date and time: expected YYYY-MM-DD and HH:MM:SS, found {date:?} and {time:?}"
                    ).into());
                }
                event.insert("timestamp".to_owned(), Value::String(timestamp));
            }
        }
        event.insert("message".to_owned(), Value::String(line.to_owned()));
        for (field, value) in self.fields.iter().zip(values) {
            if field.numeric {
                put_number(&mut event, &field.name, value)?;
            } else {
                put_text(&mut event, &field.name, value);
            }
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use serde_json::json;

    /// The example log file of AWS's "Standard logging" page, tabs and all (its third
    /// record ends with a stray tab).
    const EXAMPLE: &str = "#Version: 1.0
#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end
2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-
2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tk6WGMNkEzR5BEM_SaF47gjtX9zBDO2m349OY2an0QPEaUum1ZOLrow==\td111111abcdef8.cloudfront.net\thttps\t23\t0.000\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.000\tHit\ttext/html\t78\t-\t-
2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tf37nTMVvnKvV2ZSvEsivup_c2kZ7VXzYdjC-GUQZ5qNs-89BlWazbw==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-\t
2019-12-13\t22:36:27\tSEA19-C1\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/favicon.ico\t502\thttp://www.example.com/\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tError\t1pkpNfBQ39sYMnjjUQjmH2w1wdJnbHYTbag21o_3OfcQgPzdL2RSSQ==\twww.example.com\thttp\t675\t0.102\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t25260\t0.102\tOriginDnsError\ttext/html\t507\t-\t-
2019-12-13\t22:36:26\tSEA19-C1\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/\t502\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tError\t3AqrZGCnF_g0-5KOvfA7c9XLcf4YGvMFSeFdIetR1N_2y8jSis8Zxg==\twww.example.com\thttp\t735\t0.107\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t3802\t0.107\tOriginDnsError\ttext/html\t507\t-\t-
2019-12-13\t22:37:02\tSEA19-C2\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/\t502\t-\tcurl/7.55.1\t-\t-\tError\tkBkDzGnceVtWHqSCqBUqtA_cEs2T3tFUBbnBNkB9El_uVRhHgcZfcw==\twww.example.com\thttp\t387\t0.103\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t12644\t0.103\tOriginDnsError\ttext/html\t507\t-\t-
";

    fn record_lines() -> Vec<&'static str> {
        EXAMPLE.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn example_file() {
        let (events, stats) = parse_all(Format::CloudFront, EXAMPLE.as_bytes());
        assert_eq!((stats.records, stats.errors), (6, 0));

        let e = &events[0];
        assert_eq!(e["timestamp"], "2019-12-04T21:02:31Z");
        assert_eq!(e["message"], record_lines()[0]);
        assert_eq!(e["date"], "2019-12-04");
        assert_eq!(e["time"], "21:02:31");
        assert_eq!(e["x_edge_location"], "LAX1");
        assert_eq!(e["sc_bytes"], 392);
        assert_eq!(e["c_ip"], "192.0.2.100");
        assert_eq!(e["cs_method"], "GET");
        assert_eq!(e["cs_host"], "d111111abcdef8.cloudfront.net");
        assert_eq!(e["cs_uri_stem"], "/index.html");
        assert_eq!(e["sc_status"], 200);
        assert_eq!(
            e["cs_user_agent"],
            "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36"
        );
        assert_eq!(e["x_edge_result_type"], "Hit");
        assert_eq!(
            e["x_edge_request_id"],
            "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="
        );
        assert_eq!(e["cs_protocol"], "https");
        assert_eq!(e["cs_bytes"], 23);
        assert_eq!(e["time_taken"], json!(0.001));
        assert_eq!(e["ssl_protocol"], "TLSv1.2");
        assert_eq!(e["ssl_cipher"], "ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(e["cs_protocol_version"], "HTTP/2.0");
        assert_eq!(e["c_port"], 11040);
        assert_eq!(e["time_to_first_byte"], json!(0.001));
        assert_eq!(e["sc_content_type"], "text/html");
        assert_eq!(e["sc_content_len"], 78);
        for absent in [
            "cs_referer",
            "cs_uri_query",
            "cs_cookie",
            "x_forwarded_for",
            "fle_status",
            "fle_encrypted_fields",
            "sc_range_start",
            "sc_range_end",
        ] {
            assert!(!e.contains_key(absent), "{absent} should be absent");
        }

        // The record with a trailing tab.
        assert!(!events[2].contains_key("sc_range_end"));
        assert_eq!(
            events[2]["x_edge_request_id"],
            "f37nTMVvnKvV2ZSvEsivup_c2kZ7VXzYdjC-GUQZ5qNs-89BlWazbw=="
        );

        let e = &events[3];
        assert_eq!(e["timestamp"], "2019-12-13T22:36:27Z");
        assert_eq!(e["x_edge_location"], "SEA19-C1");
        assert_eq!(e["c_ip"], "192.0.2.200");
        assert_eq!(e["cs_uri_stem"], "/favicon.ico");
        assert_eq!(e["sc_status"], 502);
        assert_eq!(e["cs_referer"], "http://www.example.com/");
        assert_eq!(e["x_host_header"], "www.example.com");
        assert_eq!(e["cs_protocol"], "http");
        assert_eq!(e["time_taken"], json!(0.102));
        assert!(!e.contains_key("ssl_protocol"));
        assert_eq!(e["x_edge_detailed_result_type"], "OriginDnsError");
        assert_eq!(e["sc_content_len"], 507);

        assert_eq!(events[5]["cs_user_agent"], "curl/7.55.1");
        assert_eq!(events[5]["timestamp"], "2019-12-13T22:37:02Z");
    }

    #[test]
    fn header_defines_the_fields() {
        let data = "#Version: 1.0\r\n#Fields: date time c-ip sc-status cs(User-Agent)\r\n\
                    2019-12-04\t21:02:31\t192.0.2.100\t000\tcurl/7.55.1\r\n";
        let (events, stats) = parse_all(Format::CloudFront, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        let e = &events[0];
        assert_eq!(e.len(), 7);
        assert_eq!(e["timestamp"], "2019-12-04T21:02:31Z");
        assert_eq!(
            e["message"],
            "2019-12-04\t21:02:31\t192.0.2.100\t000\tcurl/7.55.1"
        );
        assert_eq!(e["sc_status"], 0);
        assert_eq!(e["cs_user_agent"], "curl/7.55.1");
    }

    #[test]
    fn without_header_the_documented_fields_are_used() {
        let (events, stats) = parse_all(Format::CloudFront, record_lines()[3].as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        assert_eq!(events[0]["sc_status"], 502);
        assert_eq!(events[0]["x_edge_detailed_result_type"], "OriginDnsError");
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let lines = record_lines();
        let truncated = &lines[1][..120];
        let bad_status = lines[3].replace("\t502\t", "\tfive\t");
        let bad_date = lines[4].replace("2019-12-13", "2019-13-13");
        let data = format!(
            "{}\n{}\n{truncated}\n{bad_status}\n{bad_date}\n{}\n",
            EXAMPLE.lines().take(2).collect::<Vec<_>>().join("\n"),
            lines[0],
            lines[5]
        );
        let (events, stats) = parse_all(Format::CloudFront, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (5, 3));
        assert_eq!(events[0]["sc_status"], 200);
        assert_eq!(events[4]["cs_user_agent"], "curl/7.55.1");
        assert_eq!(events[1]["message"], truncated);
        assert_eq!(
            events[1]["parse_error"],
            "expected 33 tab-separated fields, found 11"
        );
        assert_eq!(
            events[2]["parse_error"],
            "sc_status: expected a number, found \"five\""
        );
        assert_eq!(
            events[3]["parse_error"],
            "date and time: expected YYYY-MM-DD and HH:MM:SS, found \"2019-13-13\" and \"22:36:26\""
        );
    }
}
