//! AWS WAF logs: one JSON object per line, each a web request AWS WAF inspected, kept as it
//! is (its `timestamp` is epoch milliseconds), with a one-line `message`:
//! `<action> <httpRequest.httpMethod> <httpRequest.uri> from <httpRequest.clientIp>`.

use serde_json::{Map, Value};

use super::Event;

/// The event of one log record.
pub(super) fn event(record: Event) -> Event {
    let mut event = Event::with_capacity(record.len() + 1);
    event.insert("message".to_owned(), Value::String(summary(&record)));
    event.extend(record);
    event
}

/// `<action> <method> <uri> from <client ip>`, `-` for what the record does not say.
fn summary(record: &Map<String, Value>) -> String {
    let request = record.get("httpRequest").and_then(Value::as_object);
    let from_request = |key: &str| request.and_then(|r| text(r, key)).unwrap_or("-");
    format!(
        "{} {} {} from {}",
        text(record, "action").unwrap_or("-"),
        from_request("httpMethod"),
        from_request("uri"),
        from_request("clientIp")
    )
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
    use super::super::Format;
    use serde_json::json;

    // Records of AWS WAF's "Log examples" (a terminating SQL injection match, a CAPTCHA
    // block, a JSON body inspection without a URI), one line each as AWS WAF writes them.
    const SQLI: &str = r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:111122223333:regional/webacl/STMTest/1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE","terminatingRuleId":"STMTest_SQLi_XSS","terminatingRuleType":"REGULAR","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"HEADER","matchedData":["10","AND","1"]}],"httpSourceName":"-","httpSourceId":"-","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"1.1.1.1","country":"AU","headers":[{"name":"Host","value":"localhost:1989"},{"name":"User-Agent","value":"curl/7.61.1"},{"name":"Accept","value":"*/*"},{"name":"x-stm-test","value":"10 AND 1=1"}],"uri":"/foo","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"value"}]}"#;
    const CAPTCHA: &str = r#"{"timestamp":1632420416512,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/captcha-web-acl/585e38b5-afce-4d2a-b417-14fb08b66c67","terminatingRuleId":"captcha-rule","terminatingRuleType":"REGULAR","action":"CAPTCHA","terminatingRuleMatchDetails":[],"httpSourceName":"APIGW","httpSourceId":"123456789012:b34myvfw0b:pen-test","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":405,"httpRequest":{"clientIp":"72.21.198.65","country":"US","headers":[{"name":"X-Forwarded-For","value":"72.21.198.65"},{"name":"sec-ch-ua","value":"\"Chromium\";v=\"94\", \"Google Chrome\";v=\"94\", \";Not A Brand\";v=\"99\""}],"uri":"/pen-test/pets","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"GINKHEssoAMFsrg="},"captchaResponse":{"responseCode":405,"solveTimestamp":0,"failureReason":"TOKEN_MISSING"}}"#;
    const JSON_BODY: &str = r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:123456789012:regional/webacl/test/111","terminatingRuleId":"STMTest_SQLi_XSS","terminatingRuleType":"REGULAR","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"UNKNOWN","matchedData":["10","AND","1"]}],"httpSourceName":"ALB","httpSourceId":"alb","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"1.1.1.1","country":"AU","headers":[],"uri":"","args":"","httpVersion":"HTTP/1.1","httpMethod":"POST","requestId":"null"},"labels":[{"name":"value"}]}"#;

    #[test]
    fn log_records() {
        let data = format!("{SQLI}\n{CAPTCHA}\n{JSON_BODY}\n");
        let (events, stats) = parse_all(Format::Waf, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (3, 0));

        let e = &events[0];
        assert_eq!(e["message"], "BLOCK GET /foo from 1.1.1.1");
        // The record's own JSON, as it is: the server reads its epoch-millisecond timestamp.
        assert_eq!(e["timestamp"], 1576280412771_i64);
        assert_eq!(e["terminatingRuleId"], "STMTest_SQLi_XSS");
        assert_eq!(
            e["terminatingRuleMatchDetails"][0]["matchedData"],
            json!(["10", "AND", "1"])
        );
        assert_eq!(e["httpRequest"]["country"], "AU");
        assert_eq!(e["httpRequest"]["headers"][3]["value"], "10 AND 1=1");
        assert_eq!(e.len(), 15);

        let e = &events[1];
        assert_eq!(e["message"], "CAPTCHA GET /pen-test/pets from 72.21.198.65");
        assert_eq!(e["responseCodeSent"], 405);
        assert_eq!(e["captchaResponse"]["failureReason"], "TOKEN_MISSING");
        assert_eq!(
            e["httpRequest"]["headers"][1]["value"],
            r#""Chromium";v="94", "Google Chrome";v="94", ";Not A Brand";v="99""#
        );

        assert_eq!(events[2]["message"], "BLOCK POST - from 1.1.1.1");
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let truncated = &CAPTCHA[..200];
        let data = format!("{SQLI}\r\n{truncated}\r\n\"BLOCK\"\r\n{JSON_BODY}\r\n");
        let (events, stats) = parse_all(Format::Waf, data.as_bytes());
        assert_eq!((stats.records, stats.errors), (4, 2));
        assert_eq!(events[0]["message"], "BLOCK GET /foo from 1.1.1.1");
        assert_eq!(events[3]["httpRequest"]["httpMethod"], "POST");
        assert_eq!(events[1]["message"], truncated);
        assert_eq!(
            events[1]["parse_error"],
            "invalid JSON: EOF while parsing a string at line 1 column 200"
        );
        assert_eq!(events[2]["message"], "\"BLOCK\"");
        assert_eq!(
            events[2]["parse_error"],
            "expected a JSON object, found a string"
        );
    }
}
