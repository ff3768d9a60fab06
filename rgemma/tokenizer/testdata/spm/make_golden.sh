#!/usr/bin/env bash
# Regenerates golden.jsonl: encodes each test case with spm_encode (the C++
# SentencePiece tools, Debian package `sentencepiece`) and tokenizer.model in
# this folder. Each output line is {"name": ..., "text": ..., "ids": [...]}.
#
# spm_encode reads one sentence per line, so no case may contain a newline.
# The Go tests cover newlines separately.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v spm_encode >/dev/null; then
	echo "make_golden.sh: spm_encode not found; install it with: apt-get install -y sentencepiece" >&2
	exit 1
fi

python3 - <<'PYTHON'
import json
import subprocess

# (name, text); names are test case names, so keep them short and unique.
CASES = [
    ("ascii_words", "Hello world"),
    ("ascii_sentence", "The quick brown fox jumps over the lazy dog."),
    ("license_phrase", "you may not use this file except in compliance with the License."),
    ("upper_case", "GNU GENERAL PUBLIC LICENSE"),
    ("empty", ""),
    ("single_char", "x"),
    ("single_space", " "),
    ("only_spaces", "      "),
    ("leading_space", " leading space"),
    ("leading_spaces", "   three leading spaces"),
    ("trailing_space", "trailing space "),
    ("trailing_spaces", "trailing spaces   "),
    ("internal_spaces", "multiple    internal     spaces"),
    ("tabs", "tab\tseparated\tvalues"),
    ("digits", "1234567890"),
    ("version_date", "Version 2.0, January 2004"),
    ("decimals", "3.14159 and 2,718"),
    ("punctuation", "~`!@#$%^&*()_+-={}[]|:;<>?,./"),
    ("quotes", "quotes \"double\" and 'single'"),
    ("backslashes", "C:\\path\\to\\file"),
    ("url", "mail user@example.com or see https://example.org/a?q=1&r=2"),
    ("repeated_char", "a" * 50),
    ("latin_diacritics", "naïve café résumé Ünïcödé ß"),
    ("cyrillic", "Привет, мир"),
    ("greek", "Ελληνικά γράμματα"),
    ("japanese", "日本語のテキスト"),
    ("korean", "한국어 문장"),
    ("arabic", "مرحبا بالعالم"),
    ("devanagari", "हिन्दी"),
    ("emoji", "🙂 emoji 🚀"),
    ("emoji_zwj", "👩‍💻 at work"),
    ("user_defined_symbols", "<start_of_turn>user Hi<end_of_turn>"),
    ("literal_bos_prefix", "<bos>text after a literal BOS piece"),
    ("literal_bos_inside", "a <bos> b"),
]

names = [name for name, _ in CASES]
assert len(names) == len(set(names)), "duplicate case names"
for name, text in CASES:
    assert "\n" not in text, f"case {name} contains a newline"
    assert "\r" not in text, f"case {name} contains a carriage return"

spm_input = "".join(text + "\n" for _, text in CASES)
result = subprocess.run(
    ["spm_encode", "--model=tokenizer.model", "--output_format=id"],
    input=spm_input.encode("utf-8"),
    capture_output=True,
    check=True,
)
lines = result.stdout.decode("utf-8").split("\n")
assert lines[-1] == "", "spm_encode output does not end with a newline"
lines = lines[:-1]
assert len(lines) == len(CASES), f"spm_encode returned {len(lines)} lines for {len(CASES)} cases"

with open("golden.jsonl", "w", encoding="utf-8") as out:
    for (name, text), line in zip(CASES, lines):
        ids = [int(field) for field in line.split()]
        out.write(json.dumps({"name": name, "text": text, "ids": ids}, ensure_ascii=False) + "\n")
PYTHON

echo "wrote $(wc -l <golden.jsonl) cases to golden.jsonl"
