//! Push providers' replies (`confab_push::providers::classify_reply`, the
//! mapping each adapter applies): any status, `Retry-After` value and body,
//! for every vendor, map to an outcome or "re-authenticate", never a panic.
#![no_main]

use confab_push::Vendor;
use confab_push::providers::classify_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: vendor (1 byte), status (2), Retry-After length (1), the
    // Retry-After value, then the body.
    if data.len() < 4 {
        return;
    }
    let vendor = Vendor::ALL[usize::from(data[0]) % Vendor::ALL.len()];
    let status = u16::from_be_bytes([data[1], data[2]]);
    let rest = &data[4..];
    let header_len = usize::from(data[3]).min(rest.len());
    let (retry_after, body) = rest.split_at(header_len);
    let retry_after = (!retry_after.is_empty()).then_some(retry_after);
    let _ = classify_reply(vendor, status, retry_after, body);
});
