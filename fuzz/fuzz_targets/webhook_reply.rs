//! A tenant endpoint's before_send answer (`Webhooks::before_send` reads it
//! with `parse_before_send_answer`): any bytes are a decision or an error,
//! never a panic, and a decision obeys the limits the server relies on.
#![no_main]

use confab_webhooks::{Decision, parse_before_send_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_before_send_answer(data, 4096) {
        Ok(Decision::Reject { code, message }) => {
            assert!(!code.chars().any(char::is_control));
            assert!(!message.chars().any(char::is_control));
            assert!(code.chars().count() <= confab_webhooks::MAX_REJECT_CODE);
            assert!(message.chars().count() <= confab_webhooks::MAX_REJECT_MESSAGE);
        }
        Ok(Decision::Modify(body)) => assert!(body.len() <= 4096),
        Ok(Decision::Allow) | Err(_) => {}
        Ok(Decision::Unavailable(_)) => panic!("the parser never decides unavailable"),
    }
});
