//! VPC flow log records in the text file format: space-separated values in the order of the
//! file's header line, which names the flow log's fields (`version account-id interface-id
//! ...` for the default format, any selection for a custom format). A file without a header
//! is read with the default (version 2) fields.

use super::{is_absent, parse_number, put_number, put_text, snake_case, Event, RecordError, Sink};
use serde_json::Value;

/// The default flow log format (version 2).
const DEFAULT_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Every field AWS documents for flow log records (versions 2 to 8), by which a header line
/// is told from a record.
const KNOWN_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
];

/// The fields whose values are numbers (attribute names).
const NUMERIC_FIELDS: &[&str] = &[
    "version",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "tcp_flags",
    "traffic_path",
];

/// One field of the current layout.
struct Field {
    name: String,
    numeric: bool,
}

/// The layout of the records that follow: from the header line, or the default.
pub(super) struct VpcFlow {
    fields: Vec<Field>,
    /// Where the record's time is: `start`, else `end`.
    time_index: Option<usize>,
}

impl VpcFlow {
    pub(super) fn new() -> Self {
        let mut parser = VpcFlow {
            fields: Vec::new(),
            time_index: None,
        };
        parser.set_fields(DEFAULT_FIELDS);
        parser
    }

    fn set_fields(&mut self, names: &[&str]) {
        self.fields = names
            .iter()
            .map(|name| {
                let name = snake_case(name);
                Field {
                    numeric: NUMERIC_FIELDS.contains(&name.as_str()),
                    name,
                }
            })
            .collect();
        let index_of = |wanted: &str| self.fields.iter().position(|f| f.name == wanted);
        self.time_index = index_of("start").or_else(|| index_of("end"));
    }

    /// Parses one line: a header line sets the layout, a record is emitted.
    pub(super) fn line(&mut self, line: &str, sink: &mut Sink<'_>) {
        let values: Vec<&str> = line.split_ascii_whitespace().collect();
        if is_header(&values) {
            self.set_fields(&values);
            return;
        }
        match self.record(line, &values) {
            Ok(event) => sink.record(event),
            Err(why) => sink.error(line, why.0),
        }
    }

    fn record(&self, line: &str, values: &[&str]) -> Result<Event, RecordError> {
        if values.len() != self.fields.len() {
            return Err(format!(
                "expected {} space-separated fields ({} ... {}), found {}",
                self.fields.len(),
                self.fields.first().map_or("", |f| f.name.as_str()),
                self.fields.last().map_or("", |f| f.name.as_str()),
                values.len()
            )
            .into());
        }
        let mut event = Event::with_capacity(self.fields.len() + 2);
        if let Some(index) = self.time_index {
            let time = values[index];
            if !is_absent(time) {
                let time = parse_number(time).ok_or_else(|| {
                    let name = &self.fields[index].name;
                    format!("{name}: expected epoch seconds, found {time:?}")
                })?;
                event.insert("timestamp".to_owned(), time);
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

/// Whether a line's words are a header: field names only (lower-case words joined by `-`),
/// at least half of them documented flow log fields (fields added after these still leave
/// a header recognizable).
pub(super) fn is_header(words: &[&str]) -> bool {
    let known = words
        .iter()
        .filter(|word| KNOWN_FIELDS.contains(word))
        .count();
    known > 0
        && known * 2 >= words.len()
        && words.iter().all(|word| {
            word.split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        })
}

/// Whether a line's words are a record of the default format (for recognizing a file
/// without its header).
pub(super) fn is_default_record(words: &[&str]) -> bool {
    words.len() == DEFAULT_FIELDS.len()
        && words[0] == "2"
        && words[2].starts_with("eni-")
        && matches!(words[13], "OK" | "NODATA" | "SKIPDATA")
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;

    const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

    // Default-format records from AWS's "Flow log record examples".
    const ACCEPT: &str = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
    const REJECT: &str = "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK";
    const NODATA: &str =
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
    const IPV6: &str = "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK";

    #[test]
    fn default_format_with_header() {
        let data = format!("{HEADER}\n{ACCEPT}\n{REJECT}\n{NODATA}\n{IPV6}\n");
        let (events, stats) = parse_all(Format::VpcFlow, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (4, 0));

        let e = &events[0];
        assert_eq!(e["timestamp"], 1418530010);
        assert_eq!(e["message"], ACCEPT);
        assert_eq!(e["version"], 2);
        // An account id is an identifier (it may start with 0): kept as a string.
        assert_eq!(e["account_id"], "123456789010");
        assert_eq!(e["interface_id"], "eni-1235b8ca123456789");
        assert_eq!(e["srcaddr"], "172.31.16.139");
        assert_eq!(e["dstaddr"], "172.31.16.21");
        assert_eq!(e["srcport"], 20641);
        assert_eq!(e["dstport"], 22);
        assert_eq!(e["protocol"], 6);
        assert_eq!(e["packets"], 20);
        assert_eq!(e["bytes"], 4249);
        assert_eq!(e["start"], 1418530010);
        assert_eq!(e["end"], 1418530070);
        assert_eq!(e["action"], "ACCEPT");
        assert_eq!(e["log_status"], "OK");
        assert_eq!(e.len(), 16);

        assert_eq!(events[1]["action"], "REJECT");
        assert_eq!(events[1]["dstport"], 3389);

        let e = &events[2];
        assert_eq!(e["timestamp"], 1431280876);
        assert_eq!(e["log_status"], "NODATA");
        for absent in [
            "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action",
        ] {
            assert!(!e.contains_key(absent), "{absent} should be absent");
        }

        assert_eq!(
            events[3]["srcaddr"],
            "2001:db8:1234:a100:8d6e:3477:df66:f105"
        );
        assert_eq!(events[3]["bytes"], 8855);
    }

    #[test]
    fn without_header_the_default_fields_are_used() {
        let (events, stats) = parse_all(Format::VpcFlow, format!("{ACCEPT}\n{NODATA}").as_bytes());
        assert_eq!((stats.records, stats.errors), (2, 0));
        assert_eq!(events[0]["dstport"], 22);
        assert_eq!(events[1]["log_status"], "NODATA");
    }

    #[test]
    fn custom_format_from_the_header() {
        // The TCP flag sequence and traffic path examples of AWS's "Flow log record
        // examples" (custom formats, versions 3 and 5).
        let data = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status\n\
            3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK\n\
            3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43638  10.0.0.62 52.213.180.42 6 967 14 1566933133 1566933193 ACCEPT 19 OK\n";
        let (events, stats) = parse_all(Format::VpcFlow, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (2, 0));
        let e = &events[0];
        assert_eq!(e["timestamp"], 1566848875);
        assert_eq!(e["vpc_id"], "vpc-abcdefab012345678");
        assert_eq!(e["subnet_id"], "subnet-aaaaaaaa012345678");
        assert_eq!(e["instance_id"], "i-01234567890123456");
        assert_eq!(e["type"], "IPv4");
        assert_eq!(e["pkt_srcaddr"], "52.213.180.42");
        assert_eq!(e["pkt_dstaddr"], "10.0.0.62");
        assert_eq!(e["bytes"], 568);
        assert_eq!(e["packets"], 8);
        assert_eq!(e["tcp_flags"], 2);
        assert_eq!(e["version"], 3);
        // Runs of spaces separate like one.
        assert_eq!(events[1]["dstport"], 43638);
        assert_eq!(events[1]["tcp_flags"], 19);

        let data = "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id vpc-id subnet-id instance-id interface-id region az-id sublocation-type sublocation-id action tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service traffic-path flow-direction log-status\n\
            5 10.0.0.71 52.95.128.179 34210 80 6 1616729292 1616729349 IPv4 7 471 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 3 10.0.0.71 52.95.128.179 - S3 8 egress OK\n";
        let (events, stats) = parse_all(Format::VpcFlow, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        let e = &events[0];
        assert_eq!(e["region"], "ap-southeast-2");
        assert_eq!(e["az_id"], "apse2-az3");
        assert_eq!(e["pkt_dst_aws_service"], "S3");
        assert_eq!(e["traffic_path"], 8);
        assert_eq!(e["flow_direction"], "egress");
        assert!(!e.contains_key("pkt_src_aws_service"));
        assert!(!e.contains_key("sublocation_type"));
    }

    #[test]
    fn custom_format_without_times() {
        // The NAT gateway example: no start or end, so no timestamp.
        let data = "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr\n\
                    - eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5\n";
        let (events, stats) = parse_all(Format::VpcFlow, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (1, 0));
        let e = &events[0];
        assert!(!e.contains_key("timestamp"));
        assert!(!e.contains_key("instance_id"));
        assert_eq!(e["dstaddr"], "10.0.0.220");
        assert_eq!(e["pkt_dstaddr"], "203.0.113.5");
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let truncated = &REJECT[..40];
        let bad_port = ACCEPT.replace(" 22 6 ", " ssh 6 ");
        let bad_start = ACCEPT.replace("1418530010", "soon");
        let data = format!(
            "{HEADER}\r\n{ACCEPT}\r\n{truncated}\r\n{bad_port}\r\n{bad_start}\r\n{REJECT}\r\n"
        );
        let (events, stats) = parse_all(Format::VpcFlow, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (5, 3));
        assert_eq!(events[0]["srcport"], 20641);
        assert_eq!(events[4]["dstport"], 3389);
        assert_eq!(events[4]["message"], REJECT);
        assert_eq!(events[1]["message"], truncated);
        assert_eq!(
            events[1]["parse_error"],
            "expected 14 space-separated fields (version ... log_status), found 4"
        );
        assert_eq!(
            events[2]["parse_error"],
            "dstport: expected a number, found \"ssh\""
        );
        assert_eq!(
            events[3]["parse_error"],
            "start: expected epoch seconds, found \"soon\""
        );
    }

    #[test]
    fn header_recognition() {
        let words = |line: &'static str| line.split_whitespace().collect::<Vec<_>>();
        assert!(super::is_header(&words(HEADER)));
        assert!(super::is_header(&words("instance-id interface-id srcaddr")));
        assert!(!super::is_header(&words(ACCEPT)));
        assert!(!super::is_header(&words("ingress egress")));
        assert!(!super::is_header(&words("http is a protocol")));
        // A field documented after this parser was written.
        assert!(super::is_header(&words(
            "version srcaddr dstaddr new-field"
        )));
        assert!(!super::is_header(&words("- -")));
        assert!(super::is_default_record(&words(ACCEPT)));
        assert!(super::is_default_record(&words(NODATA)));
        assert!(!super::is_default_record(&words(HEADER)));
    }
}
