"""The per-language keyword files: every shipped one is valid, and a bad one is refused clearly.

Also the requested length ("2000 Wörter") that the files' word units feed, table-driven per
language, and that adding a language is adding one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, get_args

import pytest

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing import metadata as m
from octoroute.routing.features import extract
from octoroute.routing.lexicon import (
    DIRECTORY,
    LANGUAGES,
    GroupName,
    KeywordGroup,
    LexiconError,
    load_languages,
    parse_language,
)
from octoroute.routing.lexicon.folding import phrase_key
from octoroute.routing.lexicon.length import LengthMatcher
from octoroute.routing.metadata import infer_metadata
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.signals import Lexicon, fold, scan_text, tokenize
from octoroute.wire.messages import Message

PACKAGE: Final = DIRECTORY
SHIPPED: Final = sorted(path.name for path in DIRECTORY.glob("*.toml"))
GOOD: Final = 'language = "Testish"\nword_units = ["wug"]\n\n[groups]\ngreet = ["hallo there"]\n'


# --- the shipped files ---------------------------------------------------------------------


def test_every_shipped_file_is_loaded_once_at_import() -> None:
    assert len(SHIPPED) >= 16
    assert [f"{language.code}.toml" for language in LANGUAGES] == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_file_is_valid(name: str) -> None:
    language = parse_language(name, PACKAGE.joinpath(name).read_text(encoding="utf-8"))
    assert language.name
    assert language.groups
    assert set(language.groups) <= set(KeywordGroup)
    assert all(phrases for phrases in language.groups.values())
    assert language.word_units, f"{name} has no word units: '2000 <words>' would not be a length"


def test_english_fills_every_group_and_every_group_is_filled() -> None:
    english = next(language for language in LANGUAGES if language.code == "en")
    assert set(english.groups) == set(KeywordGroup)


def test_groups_are_a_str_enum_of_the_names_the_files_use() -> None:
    assert KeywordGroup("code_strong") is KeywordGroup.CODE_STRONG
    assert KeywordGroup.CODE_STRONG.value == "code_strong"
    assert hash(KeywordGroup.CODE_STRONG) == hash("code_strong")
    counts = scan_text("Write a JavaScript function").evidence.counts
    assert counts["code_strong"] == counts[KeywordGroup.CODE_STRONG] == 1
    assert all(type(group) is str for group in counts)  # plain strings hash faster


def test_the_group_name_type_lists_the_enum_values() -> None:
    assert get_args(GroupName) == tuple(group.value for group in KeywordGroup)


def test_phrases_are_stored_in_their_matched_form() -> None:
    english = next(language for language in LANGUAGES if language.code == "en")
    greet = english.groups[KeywordGroup.GREET]
    assert "good morning" in greet  # "good {morning,...}" expanded
    assert "good night" in greet
    assert phrase_key("What's up?") == "what s up"
    assert phrase_key("Wörter") == "worter"
    assert phrase_key("你好") == "你好"


@pytest.mark.parametrize(
    ("phrase", "group"),
    [
        ("धन्यवाद", "thanks"),  # Hindi
        ("ধন্যবাদ", "thanks"),  # Bengali
        ("நன்றி", "thanks"),  # Tamil
        ("ధన్యవాదాలు", "thanks"),  # Telugu
    ],
)
def test_indic_words_are_kept_whole_and_matched_as_substrings(phrase: str, group: str) -> None:
    """``re`` counts the vowel signs and the virama of the Indic scripts as non-letters, so
    splitting at them would leave fragments (Tamil நன்றி as ந + ற, Telugu ధన్యవాదాలు in four):
    their phrases are one substring each (``UNSPACED_CLASS``), and no fragment is a word."""
    assert phrase_key(phrase) == phrase
    assert tokenize(fold(f"ok {phrase} ok"), unspaced=True) == ["ok", "ok"]
    assert group in scan_text(f"{phrase}!").evidence.counts


# --- errors a language author can make -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('language = "X"\n[groups]\ngreet = ["hi"', "not valid TOML"),
        ('language = "X"\n[groups]\ngreet = ["hi"]\ngreet = ["yo"]\n', "not valid TOML"),
        ('language = "X"\n[groups]\ngreeting = ["hi"]\n', "unknown keyword group 'greeting'"),
        ('language = "X"\n[groups]\ngreeting = ["hi"]\n', "did you mean 'greet'?"),
        ('language = "X"\n[groups]\ngreet = "hi"\n', "group 'greet' must be a list of strings"),
        ('language = "X"\n[groups]\ngreet = [1, 2]\n', "group 'greet' must be a list of strings"),
        ('language = "X"\n[groups]\ngreet = []\n', "group 'greet' is empty"),
        ('language = "X"\n[groups]\ngreet = ["hi", "  "]\n', "a phrase with no letters: '  '"),
        ('language = "X"\n[groups]\ngreet = ["?!"]\n', "a phrase with no letters: '?!'"),
        ('language = "X"\n[groups]\ngreet = ["hi", "Hi"]\n', "lists 'hi' twice"),
        ('language = "X"\n[groups]\ngreet = ["olá", "ola"]\n', "(as 'olá' and 'ola')"),
        ('language = "X"\n[groups]\ndepth = ["in depth", "in-depth"]\n', "'in depth' twice"),
        ('language = "X"\n[groups]\ngreet = ["good {day,day}"]\n', "'good day' twice"),
        ('language = "X"\n[groups]\ngreet = ["good {day"]\n', "unbalanced braces"),
        ('[groups]\ngreet = ["hi"]\n', "`language` must name the language"),
        ('language = ""\n[groups]\ngreet = ["hi"]\n', "`language` must name the language"),
        ('language = "X"\n', "no [groups] table"),
        ('language = "X"\ngroups = ["greet"]\n', "no [groups] table"),
        ('language = "X"\n[groups]\n', "[groups] is empty"),
        ('language = "X"\nkeywords = 1\n[groups]\ngreet = ["hi"]\n', "unknown key 'keywords'"),
        ('language = "X"\nword_units = "words"\n[groups]\ngreet = ["hi"]\n', "`word_units` must"),
        ('language = "X"\nword_units = ["a word"]\n[groups]\ngreet = ["hi"]\n', "not a single"),
        (
            'language = "X"\nlength_connectors = "de"\n[groups]\ngreet = ["hi"]\n',
            "`length_connectors` must be a list of strings",
        ),
        (
            'language = "X"\nlength_connectors = ["de la"]\n[groups]\ngreet = ["hi"]\n',
            "`length_connectors`: 'de la' is not a single word",
        ),
        (
            'language = "X"\nlength_connectors = ["的"]\n[groups]\ngreet = ["hi"]\n',
            "`length_connectors` are for scripts with spaces",
        ),
        (
            'language = "X"\nnumber_multipliers = { k = 1 }\n[groups]\ngreet = ["hi"]\n',
            "whole numbers above 1",
        ),
        (
            'language = "X"\nword_units = ["wug"]\nunits_before_number = ["wugs"]\n'
            '[groups]\ngreet = ["hi"]\n',
            "`units_before_number`: 'wugs' is not one of `word_units`",
        ),
        (
            'language = "X"\nword_units = ["字"]\nunits_before_number = ["字"]\n'
            '[groups]\ngreet = ["hi"]\n',
            "`units_before_number` are for scripts with spaces",
        ),
        (
            'language = "X"\nnumber_multipliers = { k = "1000" }\n[groups]\ngreet = ["hi"]\n',
            "whole numbers above 1",
        ),
        (
            'language = "X"\naffirm_openers = "はい"\n[groups]\ngreet = ["hi"]\n',
            "`affirm_openers` must be a list of strings",
        ),
        ('language = "X"\naffirm_openers = []\n[groups]\ngreet = ["hi"]\n', "is empty"),
        (
            'language = "X"\naffirm_openers = ["네", "네"]\n[groups]\ngreet = ["hi"]\n',
            "`affirm_openers` lists '네' twice",
        ),
    ],
)
def test_a_bad_file_is_refused_with_the_file_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(LexiconError) as caught:
        parse_language("xx.toml", text)
    message = str(caught.value)
    assert message.startswith("xx.toml: "), message
    assert problem in message, message


def _write_shipped(directory: Path) -> None:
    for name in SHIPPED:
        (directory / name).write_text(PACKAGE.joinpath(name).read_text(encoding="utf-8"))


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    _write_shipped(tmp_path)
    (tmp_path / "xx.toml").write_bytes(b'language = "\xff"\n')
    with pytest.raises(LexiconError, match=r"^xx\.toml: cannot read keyword file"):
        load_languages(tmp_path.iterdir())


def test_a_group_no_file_fills_is_refused(tmp_path: Path) -> None:
    (tmp_path / "xx.toml").write_text(GOOD)
    with pytest.raises(LexiconError, match=r"keyword group 'thanks' has phrases in no language"):
        load_languages(tmp_path.iterdir())


def test_no_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a language")
    with pytest.raises(LexiconError, match=r"no keyword files"):
        load_languages(tmp_path.iterdir())


# --- adding a language is adding one file --------------------------------------------------


def test_a_new_language_file_is_picked_up_and_matched(tmp_path: Path) -> None:
    _write_shipped(tmp_path)
    (tmp_path / "xx.toml").write_text(
        'language = "Testish"\nword_units = ["wugs"]\nnumber_multipliers = { zork = 100 }\n\n'
        '[groups]\nproof = ["blorp {that,whether}"]\ncode_strong = ["flonk"]\n'
    )
    languages = load_languages(tmp_path.iterdir())
    assert [language.code for language in languages] == sorted(
        [*(name.removesuffix(".toml") for name in SHIPPED), "xx"]
    )
    lexicon = Lexicon(languages)
    folded = fold("Blorp whether FLONK halts")
    counts = lexicon.scan(folded, tokenize(folded, unspaced=False), unspaced=False).counts
    assert counts == {KeywordGroup.PROOF: 1, KeywordGroup.CODE_STRONG: 1}
    shipped = Lexicon(LANGUAGES).scan(folded, tokenize(folded, unspaced=False), unspaced=False)
    assert shipped.counts == {}
    length = LengthMatcher(languages)
    folded = fold("give me 3 zork wugs")
    assert length.target(folded, tokenize(folded, unspaced=False), unspaced=False) == 300


def test_the_documented_example_is_a_valid_language_file() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text("utf-8")
    section = doc[doc.index("### Adding a language") :]
    example = section[section.index("```toml fragment\n") + 17 : section.index("\n```\n")]
    czech = parse_language("cs.toml", example)
    assert czech.groups[KeywordGroup.GREET] == ("ahoj", "dobry den", "dobry vecer")
    assert czech.word_units == ("slovo", "slova", "slov")
    length = LengthMatcher([czech])
    folded = fold("Napiš esej na 2 tis. slov")
    assert length.target(folded, tokenize(folded, unspaced=False), unspaced=False) == 2000


# --- requested lengths in every language ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("Write a 2000 words essay on trade", 2000),
        ("Write a 2,000-word essay on trade", 2000),
        ("Write 500 words about cats", 500),
        ("a 2k word essay", 2000),
        ("about 1.5k words please", 1500),
        ("Schreibe 2000 Wörter über den Handel", 2000),
        ("Ein Aufsatz mit 2.000 Wörtern", 2000),
        ("Escribe un ensayo de 1.200 palabras", 1200),
        ("Écris un texte de 800 mots", 800),
        ("Écris un texte de 2 000 mots", 2000),
        ("Écris un texte de 2\u202f000 mots", 2000),
        ("Scrivi un saggio di 1500 parole", 1500),
        ("Escreva um texto de 500 palavras", 500),
        ("Schrijf een essay van 1500 woorden", 1500),
        ("Skriv en text på 1000 ord", 1000),
        ("Напиши эссе на 500 слов", 500),
        ("Напиши 3 слова", 3),
        ("Napisz esej na 2000 słów", 2000),
        ("1000 kelimelik bir deneme yaz", 1000),
        ("اكتب مقالا من 500 كلمة", 500),
        ("写一篇2000字的文章", 2000),
        ("写一部1万字的小说", 10000),
        ("2000字で書いてください", 2000),
        ("1500語のエッセイを書いて", 1500),
        ("500단어로 써줘", 500),
        ("1000 शब्दों में निबंध लिखें", 1000),
        ("Напиши есе на 500 слів", 500),
        ("Tulis esai 500 kata tentang laut", 500),
        ("Viết bài luận 800 chữ về biển", 800),
        ("Napiš esej na 2000 slov o obchodu", 2000),
        ("Napiš esej na 2 tis. slov", 2000),
        ("Írj egy 1000 szavas esszét a kereskedelemről", 1000),
        ("Írj 500 szót a macskákról", 500),
        ("Γράψε ένα δοκίμιο 800 λέξεων για το εμπόριο", 800),
        ("כתוב חיבור של 500 מילים על סחר", 500),
        ("Sumulat ng sanaysay na 500 salita tungkol sa kalakalan", 500),
        ("500 الفاظ کا مضمون لکھیں", 500),
        ("یک مقاله ۵۰۰ کلمه ای درباره تجارت بنویس", 500),
        ("เขียนเรียงความ 500 คำ เกี่ยวกับการค้า", 500),
        ("Kirjoita 2000 sanaa kaupasta", 2000),
        ("scrie 1500 de cuvinte despre comerț", 1500),  # Romanian: "de" after 20 or more
        ("Scrie un eseu de 2.000 de cuvinte", 2000),
        ("Scrie 15 cuvinte", 15),
        ("বাণিজ্য নিয়ে 1000 শব্দের একটি প্রবন্ধ লেখো", 1000),
        ("বাণিজ্য নিয়ে ১৫০০ শব্দের প্রবন্ধ লেখো", 1500),
        # not a length
        ("Write an essay on trade", 0),
        ("the year 2000 wordpress theme", 0),
        ("version 3 of the wordlist", 0),
        ("I have 20 apples", 0),
        ("scrie de 1500 de ori aceleași cuvinte", 0),  # a connector only between the two
        ("năm 2020 từ tháng 3", 0),  # Vietnamese "từ": "word", and "from"
        ("Skriv et essay på 1500 ord om handel", 1500),
        ("Skriv et essay på 1200 ord om handel", 1200),
        ("Tulis karangan 500 patah perkataan tentang perdagangan", 500),
        ("Tulis esei 800 perkataan", 800),
        ("Andika insha ya 500 maneno kuhusu biashara", 500),
        ("Andika insha ya maneno 500 kuhusu biashara", 500),  # Swahili: the unit may come first
        ("Andika hadithi ya maneno 2,000 kuhusu bahari", 2000),
        ("Urefu wa insha, maneno: 1500", 1500),
        ("kwa maneno mengine, watu 500 walikuja", 0),  # "in other words", then a number
        ("Write 500 words, maneno 800", 800),  # the larger of the two
        ("Escriu un assaig de 1.500 paraules sobre el comerç", 1500),
        ("Napíš esej na 2000 slov o obchode", 2000),
        ("Napíš text s 500 slovami", 500),
        ("Напиши есе от 1500 думи за търговията", 1500),
        ("Napiši esej od 1500 riječi o trgovini", 1500),
        ("Напиши есеј од 800 речи", 800),
        ("Parašyk 1000 žodžių esė apie prekybą", 1000),
        ("Parasyk 500 zodziu rasini", 500),
        ("வணிகம் பற்றி 1000 வார்த்தைகளில் ஒரு கட்டுரை எழுதுங்கள்", 1000),
        ("व्यापारावर 1000 शब्दांचा निबंध लिहा", 1000),
        ("వాణిజ్యంపై 1000 పదాల వ్యాసం రాయండి", 1000),
    ],
)
def test_a_requested_length_is_read_in_every_language(text: str, target: int) -> None:
    assert scan_text(text).word_target == target


@pytest.mark.parametrize(
    "text",
    [
        "Write a 2000 words story about a lighthouse keeper",
        "Schreibe eine Geschichte mit 2000 Wörtern über einen Leuchtturmwärter",
        "Escreva uma história de 2000 palavras sobre um faroleiro",
        "Напиши рассказ на 2000 слов о смотрителе маяка",
        "Scrivi un racconto di 2000 parole su un guardiano del faro",
        "写一个2000字的故事",
    ],
)
def test_a_long_story_asked_in_words_goes_deep_in_any_language(text: str) -> None:
    meta = infer_metadata([Message("user", text)], Importance.NORMAL)
    assert m.CREATIVE_LONG in meta.signals
    assert meta.task_type is TaskType.CREATIVE_WRITING
    decision = decide_by_rules(meta, refine=True)
    assert decision is not None
    assert decision.tier is Tier.DEEP


# --- high stakes, continuations and strict forms in every language -------------------------


def cues_of(*messages: Message) -> tuple[str, ...]:
    """The learned model's ``cue`` keys of a conversation (the keyword groups it saw)."""
    return tuple(extract(messages, infer_metadata(messages, Importance.NORMAL)).cue)


@pytest.mark.parametrize(
    "text",
    [
        "can I take ibuprofen with my antidepressants?",
        "my landlord kept my deposit, what now",
        "Darf ich Ibuprofen in der Schwangerschaft nehmen?",
        "mon propriétaire garde ma caution, le bail est fini",
        "¿puedo tomar paracetamol si estoy embarazada?",
        "meu filho engoliu uma pilha, e agora?",
        "quanto paga di tasse sull'eredità un figlio?",
        "mijn verhuurder wil de huur verhogen, mag dat?",
        "czy mogę wziąć ten lek w ciąży?",
        "меня уволили без выходного пособия, что делать?",
        "kan jag dra av ränta på mitt bolån i deklarationen?",
        "hamileyken bu ilacı kullanabilir miyim?",
        "هل يمكنني أخذ هذا الدواء مع المضادات الحيوية؟",
        "क्या मैं गर्भावस्था में यह दवा ले सकती हूँ?",
        "房东不退押金怎么办",
        "妊娠中にこの薬を飲んでも大丈夫？",
        "집주인이 보증금을 안 돌려줘요",
        "should I pay off my mortgage or put more into my 401k?",
        "чи можна пити ці ліки під час вагітності?",
        "penyewa diusir, pemilik kos menahan uang sewa",
        "uống thuốc này khi mang thai có sao không?",
        "můžu brát ibuprofen v těhotenství?",
        "pronajímatel mi nechce vrátit kauci",
        "am fost concediat fără preaviz, ce fac?",
        "szedhetem ezt a gyógyszert terhesség alatt?",
        "μπορώ να πάρω αυτό το φάρμακο στην εγκυμοσύνη;",
        "אפשר לקחת את התרופה הזאת בהריון?",
        "pwede bang uminom ng gamot na ito habang buntis?",
        "ยานี้กินตอนตั้งครรภ์ได้ไหม",
        "เจ้าของห้องไม่คืนเงินประกัน",
        "کیا میں حمل کے دوران یہ دوا لے سکتی ہوں؟",
        "صاحبخانه ودیعه ام را پس نمی دهد",
        "voinko ottaa tätä lääkettä raskaana?",
        "গর্ভাবস্থায় এই ওষুধ খাওয়া যাবে কি?",
        "ছেলেকে কতটা ডোজ দেব?",
        "kan jeg tage ibuprofen når jeg er gravid?",
        "min udlejer vil ikke give mig depositummet tilbage",
        "kan jeg ta ibuprofen når jeg er gravid?",
        "utleieren vil ikke betale tilbake depositumet",
        "boleh saya makan ubat ini semasa mengandung?",
        "berapa cukai pendapatan saya tahun ini?",
        "naweza kutumia dawa hii nikiwa mjamzito?",
        "je, nitalipa ushuru kiasi gani kwa mkopo huu?",
        "puc prendre ibuprofè si estic embarassada?",
        "el propietari no em torna la fiança del lloguer",
        "môžem brať tento liek v tehotenstve?",
        "prenajímateľ mi nechce vrátiť kauciu",
        "мога ли да пия това лекарство по време на бременност?",
        "хазяинът не иска да ми върне депозита",
        "mogu li piti ovaj lijek u trudnoći?",
        "да ли могу да пијем лекове у трудноћи?",
        "ar galiu vartoti šiuos vaistus nėštumo metu?",
        "nuomotojas negrąžina užstato",
        "கர்ப்ப காலத்தில் இந்த மருந்தை எடுக்கலாமா?",
        "வீட்டு உரிமையாளர் முன்பணத்தை திருப்பித் தரவில்லை",
        "गरोदरपणात हे औषध घेऊ शकते का?",
        "घरमालक अनामत रक्कम परत देत नाही",
        "గర్భధారణ సమయంలో ఈ మందు వేసుకోవచ్చా?",
        "ఇంటి యజమాని నా డిపాజిట్ తిరిగి ఇవ్వడం లేదు",
    ],
)
def test_a_brief_high_stakes_question_is_marked_in_every_language(text: str) -> None:
    assert "stakes" in cues_of(Message("user", text))


@pytest.mark.parametrize(
    "text",
    [
        "what will the weather be like tomorrow?",
        "can you review my resume?",
        "run the whole test suite again",
        "ele irá ao mercado amanhã",  # Portuguese "irá" folds to "ira"
        "大家好，今天天气不错",  # Chinese "everyone", Japanese "landlord"
        "メモリ使用量を確認する方法",  # 使用量 holds 用量 ("dose")
        "có sự kiện gì ở Hà Nội cuối tuần này?",  # Vietnamese sự kiện, an event
        "이 글의 요약을 해줘",  # 요약을 holds 약을
        "전세계 인구는 몇 명이야?",  # 전세계 holds 전세
        "Am o sarcină grea la serviciu",  # Romanian sarcină: pregnancy, and a task
        "เชือกเส้นนี้ยาวมาก พยายามต่อไป",  # Thai ยา (medicine) inside ยาว and พยายาม
        "שלחו לי את מס' הטלפון",  # Hebrew מס (tax) is also short for "number"
        "let's begin without further ado",  # Hungarian adó folds to "ado"
        "give me a recipe for lentil soup",
        "what's the price of a flat white in Oslo?",
        "விசாரணை நடக்கிறது",  # Tamil விசா ("visa") is inside விசாரணை ("inquiry")
        "இந்த வரிசையில் நில்லுங்கள்",  # Tamil வரி ("tax") is inside வரிசை ("queue")
        "मुझे डोसा पसंद है",  # Marathi डोस ("dose") is inside डोसा
        "विमान उशिरा आहे",  # Marathi विमा ("insurance") is inside विमान ("aeroplane")
        "అప్పుడు ఏం జరిగింది",  # Telugu అప్పు ("debt") is inside అప్పుడు ("then")
        "ఈ విషయం ముఖ్యం",  # Telugu విషం ("poison") is not inside విషయం ("matter")
    ],
)
def test_everyday_words_of_any_language_are_not_stakes(text: str) -> None:
    assert "stakes" not in cues_of(Message("user", text))


CODING_QUESTION: Final = (
    Message("user", "Write a Python function that parses ISO 8601 dates from a log line."),
    Message("assistant", "```python\ndef parse(line):\n    return line.split()[0]\n```"),
)


@pytest.mark.parametrize(
    "text",
    [
        "and if the line is empty?",
        "und wenn die Zeile leer ist?",
        "et si la ligne est vide ?",
        "¿y si la línea está vacía?",
        "e se a linha estiver vazia?",
        "e se la riga è vuota?",
        "en als de regel leeg is?",
        "a jeśli linia jest pusta?",
        "а если строка пустая?",
        "och om raden är tom?",
        "peki ya satır boşsa?",
        "وإذا كان السطر فارغا؟",
        "aur agar line khali ho?",
        "那如果这一行是空的呢？",
        "じゃあ空の行だったら？",
        "그럼 빈 줄이면?",
        "а якщо рядок порожній?",
        "kalau barisnya kosong?",
        "thế nếu dòng trống thì sao?",
        "a co když je řádek prázdný?",
        "și dacă linia este goală?",
        "és ha üres a sor?",
        "και αν η γραμμή είναι κενή;",
        "ומה אם השורה ריקה?",
        "paano kung walang laman ang linya?",
        "แล้วถ้าบรรทัดว่างล่ะ",
        "اور اگر لائن خالی ہو؟",
        "و اگر خط خالی باشد؟",
        "pokračuj",
        "continuă",
        "folytasd",
        "συνέχισε",
        "תמשיך",
        "ituloy mo",
        "ทำต่อ",
        "جاری رکھیں",
        "ادامه بده",
        "entä jos rivi on tyhjä?",
        "jatka",
        "tiếp đi",
        "продовжуй",
        "lanjutkan",
        "weiter",
        "vas-y",
        "продолжай",
        "devam et",
        "계속",
        "dalej",
        "continúa",
        "og hvis linjen er tom?",
        "fortsæt",
        "fortsett",
        "hald fram",
        "macam mana kalau baris itu kosong?",
        "sambung",
        "na kama mstari ni mtupu?",
        "endelea",
        "i si la línia és buida?",
        "a čo ak je riadok prázdny?",
        "pokračuj ďalej",
        "а ако редът е празен?",
        "продължи",
        "a što ako je redak prazan?",
        "nastavi",
        "o jeigu eilutė tuščia?",
        "tęsk",
        "வரி காலியாக இருந்தால்?",
        "தொடரவும்",
        "आणि जर ओळ रिकामी असेल तर?",
        "चालू ठेवा",
        "లైన్ ఖాళీగా ఉంటే?",
        "కొనసాగించు",
    ],
)
def test_a_short_continuation_continues_the_thread_in_every_language(text: str) -> None:
    meta = infer_metadata([*CODING_QUESTION, Message("user", text)], Importance.NORMAL)
    assert m.FOLLOWUP in meta.signals
    assert meta.task_type is TaskType.CODE


@pytest.mark.parametrize(
    "text",
    [
        "Write a sonnet in strict iambic pentameter about entropy",
        "Schreibe ein Sonett in strengem jambischem Pentameter über Entropie",
        "Écris un sonnet en alexandrins sur l'entropie",
        "Escribe un soneto en endecasílabos sobre la entropía",
        "Escreva um soneto decassílabo sobre a entropia",
        "Scrivi un sonetto in endecasillabi sull'entropia",
        "Schrijf een sonnet in jambische pentameter over entropie",
        "Napisz sonet o entropii",
        "Напиши сонет пятистопным ямбом об энтропии",
        "Skriv en sonett om entropi",
        "Entropi hakkında bir sone yaz",
        "写一首关于熵的七言律诗",
        "エントロピーについてのソネットを書いて",
        "엔트로피에 대한 시조를 써줘",
        "اكتب سونيت عن الإنتروبيا",
        "एन्ट्रॉपी पर एक ग़ज़ल लिखो",
        "Напиши сонет ямбом про ентропію",
        "Tulis soneta tentang entropi",
        "Viết một bài thơ lục bát về entropy",
        "Napiš sonet o entropii",
        "Scrie un sonet despre entropie",
        "Írj egy szonettet az entrópiáról",
        "Γράψε ένα σονέτο για την εντροπία",
        "כתוב סונטה על אנטרופיה",
        "Sumulat ng soneto tungkol sa entropy",
        "แต่งโคลงสี่สุภาพเรื่องเอนโทรปี",
        "انٹروپی پر ایک غزل لکھیں",
        "یک غزل درباره آنتروپی بنویس",
        "Kirjoita sonetti entropiasta",
        "এনট্রপি নিয়ে একটি সনেট লেখো",
        "Skriv en sonet om entropi",
        "Skriv en sonett på jambisk versemål om entropi",
        "Karang syair tentang entropi",
        "Tunga utenzi kuhusu entropia",
        "Escriu un sonet en decasíl·labs sobre l'entropia",
        "Napíš sonet o entropii jambom",
        "Напиши сонет за ентропията",
        "Napiši sonet o entropiji",
        "Parašyk sonetą apie entropiją",
        "என்ட்ரோபி பற்றி ஒரு வெண்பா எழுதுங்கள்",
        "एन्ट्रॉपीवर एक सुनीत लिहा",
        "ఎంట్రోపీ గురించి ఒక పద్యం రాయండి",
    ],
)
def test_a_strict_form_is_demanding_writing_in_every_language(text: str) -> None:
    meta = infer_metadata([Message("user", text)], Importance.NORMAL)
    assert m.CREATIVE_LONG in meta.signals
    decision = decide_by_rules(meta, refine=True)
    assert decision is not None
    assert decision.tier is Tier.DEEP


OFFER: Final = (
    Message("user", "Write a Python function that parses ISO 8601 dates from a log line."),
    Message(
        "assistant",
        "```python\ndef parse(line):\n    return line.split()[0]\n```\nShall I add tests?",
    ),
)


@pytest.mark.parametrize(
    "text",
    [
        "yes, do that",
        "ja, mach das",
        "oui, vas-y",
        "sí, hazlo",
        "sim, pode fazer",
        "sì, fallo",
        "ja graag",
        "tak, zrób to",
        "да, давай",
        "ja tack",
        "evet, lütfen",
        "نعم من فضلك",
        "haan ji",
        "是的，来吧",
        "もちろん",
        "좋아요",
        "так, будь ласка",
        "iya, boleh",
        "vâng, làm đi",
        "ano prosím",
        "jasně, do toho",
        "da, te rog",
        "igen, kérem",
        "ναι, παρακαλώ",
        "כן בבקשה",
        "oo sige",
        "ได้เลย",
        "جی ہاں",
        "بله لطفا",
        "kyllä kiitos",
        "ja gerne",
        "ja takk",
        "ya, teruskan saja",
        "ndiyo tafadhali",
        "d'acord, endavant",
        "áno, urob to",
        "да, направи го",
        "može, učini to",
        "taip, prašau",
        "ஆமாம்",
        "होय",
        "అవును",
        "हाँ, कर दो",
        "हां कर दीजिए",
    ],
)
def test_yes_to_an_offer_continues_the_work_in_every_language(text: str) -> None:
    meta = infer_metadata([*OFFER, Message("user", text)], Importance.NORMAL)
    assert m.SMALLTALK not in meta.signals
    assert m.FOLLOWUP in meta.signals
    assert meta.task_type is TaskType.CODE


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("¿en qué año naciste?", "affirm"),  # Czech ano ("yes")
        ("read /proc/meminfo from a Rust proc macro", "explain"),  # Czech proč ("why")
        ("Dan ate cod and chips", "code_weak"),  # Romanian cod ("code")
        ("ce que je veux dire, de ce genre de chose", "explain"),  # Romanian de ce ("why")
        ("hai ragione, insalata mista", "affirm"),  # Romanian hai ("come on"), mișto
        ("hai ragione, insalata mista", "smalltalk"),
        ("o idee bună", "greet"),  # Romanian bună ("good"), not only bună ziua
        ("wyrzuć to do kosza, kosz jest pełny", "thanks"),  # Hungarian kösz
        ("il mese prossimo vado dal medico", "creative"),  # Hungarian mese, dal
        ("biro perjalanan di Jakarta tutup", "creative_short"),  # Tagalog biro ("joke")
        ("ingat alamat rumah saya", "smalltalk"),  # Tagalog ingat ("take care")
        ("ingat alamat rumah saya", "creative"),  # Tagalog alamat ("legend")
        ("salin teks ini ke dokumen baru", "translate"),  # Tagalog salin ("translation")
        ("θα έρθω σύντομα", "brief"),  # Greek σύντομα: "briefly", mostly "soon"
        ("η ιστορία της Ελλάδας", "creative"),  # Greek ιστορία: story and history
        ("ในโครงสร้างข้อมูลนี้มีอะไรบ้าง", "write_verb"),  # Thai สร้าง inside โครงสร้าง
        ("ของชิ้นนี้แปลกมาก", "translate"),  # Thai แปล inside แปลก ("strange")
        ("یہ میری کتاب کی بات ہے", "lookup"),  # Persian کی ("who") is Urdu "of"
        ("نظم و انضباط در مدرسه مهم است", "creative"),  # Urdu نظم ("poem") is Persian "order"
        ("احتمال دارد فردا باران ببارد", "math"),  # احتمال: "probability", mostly "likely"
        ("dis-moi ce que tu en penses, pour moi", "greet"),  # Finnish moi ("hi")
        ("la selva amazónica", "smalltalk"),  # Finnish selvä ("clear") folds to selva
        ("bene, è vero", "stakes"),  # Finnish vero ("tax")
        ("saya pergi sama teman", "followup"),  # Finnish sama ("same")
        ("আমি যাব, কিন্তু পরে", "explain"),  # Bengali কেন ("why"): its letters are in কিন্তু
        ("নতুন ডিজাইন দেখাও", "stakes"),
        ("la ce oră pot lua trenul spre Cluj?", "code_strong"),  # English lua, Romanian "take"
        ("la ce oră pot lua trenul spre Cluj?", "code_weak"),
        ("یک تابع در پایتون بنویس", "proceed"),  # Arabic تابع ("continue"), Persian "function"
        (
            "barnen leker en lek i parken",
            "stakes",
        ),  # Polish lek ("medicine"), Swedish "play"  # Bengali ডোজ ("dose"): its letters are in ডিজাইন
        ("tak, zrób to szybko", "thanks"),  # Danish tak ("thanks") is Polish "yes"
        ("los perros están aquí", "math"),  # Danish løs ("solve") folds to "los"
        ("connect the printer to the LAN", "stakes"),  # Danish lån ("loan") folds to "lan"
        ("the game has a lot of lag", "write_verb"),  # Norwegian lag ("make")
        ("close the gate behind you", "creative_short"),  # Norwegian gåte ("riddle") folds to gate
        ("mam złamaną rękę", "write_verb"),  # Malay reka ("design"): Polish ręka folds to it
        ("tengo dos perros", "stakes"),  # Malay dos ("dose") is Spanish "two"
        ("no creo que haya tiempo", "affirm"),  # Swahili haya ("OK") is Spanish "there be"
        ("mera naam Rahul hai", "affirm"),  # Swahili naam ("yes") is Hindi "name"
        ("ei ole", "greet"),  # Catalan ei ("hey") is Finnish "no"
        ("¿en qué mes naciste?", "proceed"),  # Catalan més ("more") folds to Spanish mes
        ("c'est au sud de la ville", "stakes"),  # Slovak súd ("court") folds to French sud
        ("to są ważne dane", "stakes"),  # Slovak dane ("taxes") is Polish "data"
        ("отправил резюме на вакансию", "summary"),  # Bulgarian резюме: Russian "CV"
        ("в чём дело?", "stakes"),  # Bulgarian дело ("lawsuit"): Russian "matter"
        ("jag läser en bok", "greet"),  # Croatian bok ("hi") is Swedish "book"
        ("this is where they dug the well", "stakes"),  # Croatian dug ("debt")
        ("kumain ako kada araw", "lookup"),  # Croatian kada ("when") is Tagalog "each"
        ("bir iki üç", "smalltalk"),  # Lithuanian iki ("bye") is Turkish "two"
        ("jdu do školy", "stakes"),  # Lithuanian skola ("debt"): Czech škola folds to it
        ("நான் தயார்", "lookup"),  # Tamil யார் ("who") is inside தயார் ("ready")
        ("இது தமிழ் சரித்திரம்", "affirm"),  # Tamil சரி ("OK") is inside சரித்திரம் ("history")
        ("मला हे आकलन झाले", "math"),  # Marathi कलन ("calculus") is inside आकलन
        ("त्रिकोण काढा", "lookup"),  # Marathi कोण ("who") is inside त्रिकोण ("triangle")
        ("ఎన్నికలు త్వరలో", "lookup"),  # Telugu ఎన్ని ("how many") is inside ఎన్నికలు
    ],
)
def test_words_left_out_of_a_language_do_not_fire_in_another(text: str, group: str) -> None:
    """The shared table: each new language's file names the everyday words of other languages
    it leaves out; text in those languages does not light the group up."""
    assert group not in scan_text(text).evidence.counts


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("write a small game in Lua", "code_phrase"),
        ("how do Lua coroutines work?", "code_phrase"),
        ("تابع الكتابة من فضلك", "proceed"),
        ("استمر", "proceed"),
        ("czy mogę brać tego leku codziennie?", "stakes"),
        ("jakie leki na przeziębienie?", "stakes"),
    ],
)
def test_a_word_narrowed_for_another_language_still_fires_in_its_own(text: str, group: str) -> None:
    """The other side of the collisions above: the phrases and forms kept still fire."""
    assert group in scan_text(text).evidence.counts
