#!/usr/bin/env python3
"""gguf_tokenizer_fixtures.py: reference token ids for src/model/gguf_tokenizer.rs.

Developer-run. Trains a small SentencePiece BPE model (vocabulary 1000, byte fallback,
identity normalization: what Llama 2 / Mistral / Gemma tokenizers use) on Arabic, English
and mixed text this script writes itself, stores its pieces, scores and types in a
vocabulary-only GGUF (`tokenizer.ggml.model = "llama"`) with the `gguf` package, and
records into tests/fixtures/gguf_tokenizer/:

  spm-bpe-1000.gguf   the vocabulary (about 30 KB; ours, trained on our text)
  reference.json      for each test sentence, the ids sentencepiece's own `encode` gives
                      and, when llama-cpp-python is installed in the venv, the ids
                      llama.cpp's tokenizer gives on the GGUF (`llama_cpp`; null if not)

The Rust test `model::gguf_tokenizer` tokenizes the same sentences from the GGUF and
compares ids exactly.

Runs in a venv at ${TARJAMA_HOME:-$HOME/.cache/tarjama}/gguf-tokenizer-venv with pinned
sentencepiece, gguf and protobuf, created on first run. llama-cpp-python is optional:
`--with-llama-cpp` installs it, which compiles llama.cpp (more than 15 minutes on two shared
cores, so the committed reference.json was made without it: its `llama_cpp` ids are null and
the Rust tests check llama.cpp's algorithm through a direct port instead).

  python3 scripts/gguf_tokenizer_fixtures.py [--with-llama-cpp]
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

PINS = {"sentencepiece": "0.2.0", "gguf": "0.17.1", "protobuf": "5.29.3"}
LLAMA_CPP_PIN = "0.3.36"

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "gguf_tokenizer"
TARJAMA_HOME = Path(os.environ.get("TARJAMA_HOME", Path.home() / ".cache" / "tarjama"))
VENV = TARJAMA_HOME / "gguf-tokenizer-venv"
VENV_PY = VENV / "bin" / "python"
VOCAB_SIZE = 1000


def enter_venv() -> None:
    """Re-executes this script with the venv's python, creating the venv if needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    probe = "import sentencepiece, gguf, google.protobuf"
    if not VENV_PY.exists() or subprocess.run([str(VENV_PY), "-c", probe]).returncode != 0:
        print(f"creating {VENV} with {PINS}", file=sys.stderr)
        TARJAMA_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV_PY), "-m", "pip", "install", "--progress-bar", "off"]
            + [f"{p}=={v}" for p, v in PINS.items()],
            check=True,
        )
    if "--with-llama-cpp" in sys.argv and subprocess.run([str(VENV_PY), "-c", "import llama_cpp"]).returncode != 0:
        env = dict(os.environ)
        env["CMAKE_ARGS"] = (
            "-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF "
            "-DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF"
        )
        subprocess.run(
            [str(VENV_PY), "-m", "pip", "install", "--progress-bar", "off", f"llama-cpp-python=={LLAMA_CPP_PIN}"],
            check=True,
            env=env,
        )
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve())] + sys.argv[1:])


# --- the training text -------------------------------------------------------------

AR_SUBJECTS = [
    "الوزير", "المدير العام", "اللجنة", "الحكومة", "المجلس البلدي", "الشركة", "الطالب",
    "المعلمة", "الفريق", "الباحثون", "الرئيس", "الوفد", "المحكمة", "البنك المركزي",
    "الجامعة", "المستشفى", "الصحفي", "المهندسة", "الطبيب", "السفير",
]
AR_VERBS = [
    "أعلن", "ناقش", "وافق على", "رفض", "قدّم", "نشر", "أكد", "درس", "افتتح", "راجع",
    "وقّع", "استقبل", "طالب بـ", "أصدر", "شرح", "أنهى", "بدأ", "اقترح", "انتقد", "دعم",
]
AR_OBJECTS = [
    "الميزانية الجديدة", "التقرير السنوي", "خطة التنمية", "الاتفاقية التجارية",
    "مشروع القانون", "نتائج الدراسة", "البرنامج التدريبي", "المبادرة الوطنية",
    "العقد", "الاقتراح", "السياسة المالية", "الإصلاحات الاقتصادية", "المؤتمر الدولي",
    "حملة التطعيم", "المكتبة العامة", "شبكة المياه", "الطريق السريع", "المدرسة الجديدة",
]
AR_TAILS = [
    "يوم الأحد", "في العاصمة", "بعد اجتماع طويل", "خلال الأسبوع الماضي", "أمام البرلمان",
    "في مؤتمر صحفي", "صباح اليوم", "رغم المعارضة", "بحضور الوزراء", "في نهاية العام",
    "وفقاً للبيان الرسمي", "بنسبة كبيرة", "دون تأخير", "مع الشركاء الدوليين",
]
AR_EXTRA = [
    "قال المتحدث إن النتائج كانت مشجعة جداً.",
    "ارتفعت الأسعار في الأسواق المحلية.",
    "هل يمكن ترجمة هذه الوثيقة إلى الإنجليزية؟",
    "يجب مراجعة الترجمة قبل النشر.",
    "تم تأجيل الاجتماع إلى الشهر المقبل.",
    "شكراً لكم على حسن التعاون.",
    "المادة الأولى: يسري هذا القرار من تاريخ صدوره.",
    "يتكون التقرير من ثلاثة فصول وملحقين.",
    "وصل عدد المشاركين إلى أكثر من ألف شخص.",
    "الطقس اليوم مشمس مع رياح خفيفة.",
]
EN_SUBJECTS = [
    "The minister", "The committee", "Our team", "The company", "The court", "The bank",
    "The university", "The hospital", "A journalist", "The engineer", "The council",
    "The delegation", "The researchers", "The teacher", "The government",
]
EN_VERBS = [
    "announced", "discussed", "approved", "rejected", "published", "reviewed", "signed",
    "opened", "proposed", "supported", "criticized", "completed", "started", "explained",
]
EN_OBJECTS = [
    "the new budget", "the annual report", "the development plan", "the trade agreement",
    "the draft law", "the study results", "the training program", "the national initiative",
    "the contract", "the proposal", "the financial policy", "the economic reforms",
    "the vaccination campaign", "the public library", "the water network", "the new school",
]
EN_TAILS = [
    "on Sunday", "in the capital", "after a long meeting", "last week", "before parliament",
    "at a press conference", "this morning", "despite the opposition", "at the end of the year",
    "according to the official statement", "without delay", "with international partners",
]
EN_EXTRA = [
    "Please translate this document into English.",
    "The translation must be reviewed before publication.",
    "Prices rose sharply in local markets.",
    "Thank you for your cooperation.",
    "Article 1: This decision takes effect on the date of its issue.",
    "The report consists of three chapters and two annexes.",
    "More than one thousand people took part.",
    "The weather today is sunny with a light wind.",
]


def corpus() -> list:
    rng = random.Random(20240611)
    lines = []
    for _ in range(260):
        s = f"{rng.choice(AR_SUBJECTS)} {rng.choice(AR_VERBS)} {rng.choice(AR_OBJECTS)} {rng.choice(AR_TAILS)}."
        if rng.random() < 0.3:
            s += f" بلغت القيمة {rng.randint(1, 9999)} دينار في عام {rng.randint(1990, 2030)}."
        lines.append(s)
    for _ in range(200):
        s = f"{rng.choice(EN_SUBJECTS)} {rng.choice(EN_VERBS)} {rng.choice(EN_OBJECTS)} {rng.choice(EN_TAILS)}."
        if rng.random() < 0.3:
            s += f" The amount was {rng.randint(1, 9999)} dollars in {rng.randint(1990, 2030)}."
        lines.append(s)
    for _ in range(120):
        ar = f"{rng.choice(AR_SUBJECTS)} {rng.choice(AR_VERBS)} {rng.choice(AR_OBJECTS)}"
        en = f"{rng.choice(EN_SUBJECTS)} {rng.choice(EN_VERBS)} {rng.choice(EN_OBJECTS)}"
        lines.append(rng.choice([f"{ar} ({en}).", f"{en}: {ar}.", f"{ar} - {rng.randint(1, 500)}% - {en}"]))
    lines += AR_EXTRA * 3 + EN_EXTRA * 3
    rng.shuffle(lines)
    return lines


# Sentences the tests compare: plain, mixed, digits, punctuation, runs of spaces, leading
# and trailing spaces, newlines (not in training: byte fallback), characters no piece
# covers (emoji, CJK, Arabic presentation forms and diacritics), text the model never saw.
SENTENCES = [
    "الوزير أعلن الميزانية الجديدة يوم الأحد.",
    "The minister announced the new budget on Sunday.",
    "اللجنة ناقشت التقرير السنوي (The committee discussed the annual report).",
    "بلغت القيمة 2024 دينار في عام 1999.",
    "The amount was 31415 dollars in 2027.",
    "Hello, world! 123 + 456 = 579",
    "  leading spaces and trailing  ",
    "two  spaces   three    four",
    "سطر أول\nسطر ثانٍ\n\nفقرة جديدة",
    "مرحباً 👋 بالعالم 🌍",
    "中文 and العربية and English",
    "ﷺ ﻻ ﷲ",
    "كَتَبَ الطَّالِبُ الدَّرْسَ",
    "e-mail: info@example.org, tel. +962-6-555-0100",
    "ثلاثة فصول وملحقين: ١٢٣ ٤٥٦ ٧٨٩٠",
    "Tabs\tand\tmore\ttabs",
    "Zebra quixotic jumps; völlig égal — “quotes” ‘single’ …",
    "x",
    " ",
    "؟!،؛",
    "The public library opened after a long meeting; المكتبة العامة افتتحت بعد اجتماع طويل.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "اللغةالعربيةبدونمسافاتبينالكلمات",
    "12345678901234567890",
]

# Only for llama.cpp (sentencepiece treats control symbols as plain text): control and
# user-defined tokens in the text, each stretch after one with its own space prefix.
SPECIAL_SENTENCES = [
    "<|im_start|>user\nترجم: مرحباً<|im_end|>\n<|im_start|>assistant\n",
    "<s>The minister</s>",
    "قبل<sep>بعد",
    "<sep> start and end <sep>",
    "<|im_end|><|im_end|>",
]

CONTROL = ["<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<sep>"]


def main() -> None:
    enter_venv()
    import io

    import gguf
    import numpy as np
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        control_symbols=CONTROL,
        user_defined_symbols=USER_DEFINED,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    pieces = [p.piece for p in proto.pieces]
    scores = [p.score for p in proto.pieces]
    types = [int(p.type) for p in proto.pieces]  # same numbering as tokenizer.ggml.token_type
    assert len(pieces) == VOCAB_SIZE, len(pieces)

    OUT.mkdir(parents=True, exist_ok=True)
    gguf_path = OUT / "spm-bpe-1000.gguf"
    writer = gguf.GGUFWriter(str(gguf_path), "llama")
    writer.add_name("tarjama synthetic SentencePiece BPE vocabulary")
    # Enough hyperparameters for llama.cpp to open the file with vocab_only.
    writer.add_context_length(512)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_rope_dimension_count(16)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    try:
        import llama_cpp

        llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)

        def llama_ids(text):
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_ids = None
        llama_version = None

    cases = []
    agree = 0
    for text in SENTENCES:
        ids = sp.encode(text)
        assert sp.decode(ids) == text, (text, sp.decode(ids))
        ref = llama_ids(text) if llama_ids else None
        agree += ref == ids
        cases.append({"text": text, "sentencepiece": ids, "llama_cpp": ref})
    special = [{"text": t, "llama_cpp": llama_ids(t) if llama_ids else None} for t in SPECIAL_SENTENCES]

    reference = {
        "about": "reference ids for tests/fixtures/gguf_tokenizer/spm-bpe-1000.gguf; written by scripts/gguf_tokenizer_fixtures.py",
        "versions": {"sentencepiece": spm.__version__, "gguf": PINS["gguf"], "llama_cpp_python": llama_version},
        "gguf": gguf_path.name,
        "cases": cases,
        "special_cases": special,
    }
    (OUT / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {gguf_path} ({gguf_path.stat().st_size} bytes) and reference.json: {len(cases)} sentences", end="")
    if llama_ids:
        print(f"; llama.cpp agrees with sentencepiece on {agree}/{len(cases)}")
    else:
        print("; llama.cpp not installed (run with --with-llama-cpp for its ids)")


if __name__ == "__main__":
    main()
