//! Token counting with tiktoken's `o200k_base`, the encoding the reference uses for
//! `token_count` and context budgets, so the numbers clients see are the same.

use std::sync::LazyLock;
use tiktoken_rs::CoreBPE;

static BPE: LazyLock<CoreBPE> =
    LazyLock::new(|| tiktoken_rs::o200k_base().expect("o200k_base ships inside tiktoken-rs"));

pub fn count(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    BPE.encode_ordinary(text).len() as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_tokens() {
        assert_eq!(super::count(""), 0);
        assert_eq!(super::count("hello world"), 2);
    }
}
