//! Cutting a long text into consecutive pieces that each fit a model's input, using the
//! tokenizer's offsets so every piece is a slice of the original text.

/// Splits `text` into pieces of at most `limit` tokens, given the byte `offsets` of its
/// tokens and the pre-tokenizer word each token belongs to. Cuts fall between words, so
/// each piece tokenizes back to exactly its own tokens; only a single word longer than
/// `limit` is cut inside. The pieces concatenate back to `text` (whitespace between two
/// pieces stays at the end of the first).
pub(crate) fn split(
    text: &str,
    offsets: &[(usize, usize)],
    word_ids: &[Option<u32>],
    limit: usize,
) -> Vec<String> {
    let n = offsets.len();
    if n <= limit || limit == 0 {
        return vec![text.to_owned()];
    }
    let same_word = |i: usize| word_ids[i].is_some() && word_ids[i] == word_ids[i - 1];
    let mut pieces = Vec::with_capacity(n / limit + 1);
    let (mut first_token, mut start_byte) = (0, 0);
    while n - first_token > limit {
        let latest = first_token + limit;
        let cut = (first_token + 1..=latest)
            .rev()
            .find(|&i| !same_word(i))
            .unwrap_or(latest);
        let boundary = char_boundary_at_or_after(text, offsets[cut].0);
        if boundary > start_byte && boundary < text.len() {
            pieces.push(text[start_byte..boundary].to_owned());
            start_byte = boundary;
        }
        first_token = cut;
    }
    pieces.push(text[start_byte..].to_owned());
    pieces
}

fn char_boundary_at_or_after(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::split;

    /// Whitespace tokens, each word split into pieces of at most `piece` bytes, as a
    /// word-piece tokenizer splits a word into sub-words.
    fn tokens(text: &str, piece: usize) -> (Vec<(usize, usize)>, Vec<Option<u32>>) {
        let mut offsets = Vec::new();
        let mut words = Vec::new();
        let mut pos = 0;
        for (w, word) in text.split(' ').enumerate() {
            let mut s = pos;
            while s < pos + word.len() {
                let e = (s + piece).min(pos + word.len());
                offsets.push((s, e));
                words.push(Some(w as u32));
                s = e;
            }
            pos += word.len() + 1;
        }
        (offsets, words)
    }

    #[test]
    fn short_text_is_one_piece() {
        let (o, w) = tokens("one two three", 10);
        assert_eq!(split("one two three", &o, &w, 3), vec!["one two three"]);
        assert_eq!(split("", &[], &[], 3), vec![""]);
    }

    #[test]
    fn cuts_between_words_and_keeps_every_byte() {
        let text = "aa bb cc dd ee";
        let (o, w) = tokens(text, 10);
        let pieces = split(text, &o, &w, 2);
        assert_eq!(pieces, vec!["aa bb ", "cc dd ", "ee"]);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn never_splits_a_word_that_fits() {
        // "abcdef" is three tokens; a cut after three tokens would fall inside it, so it
        // moves back before the word.
        let text = "x y abcdef";
        let (o, w) = tokens(text, 2);
        assert_eq!(o.len(), 5);
        assert_eq!(split(text, &o, &w, 3), vec!["x y ", "abcdef"]);
    }

    #[test]
    fn cuts_inside_a_word_longer_than_the_limit() {
        let text = "abcdefgh";
        let (o, w) = tokens(text, 2);
        assert_eq!(split(text, &o, &w, 3), vec!["abcdef", "gh"]);
    }

    #[test]
    fn respects_multibyte_characters() {
        let text = "héllo wörld";
        let (o, w) = tokens(text, 64);
        let pieces = split(text, &o, &w, 1);
        assert_eq!(pieces, vec!["héllo ", "wörld"]);
    }
}
