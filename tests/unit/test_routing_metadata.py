"""Metadata inference: the signals, the latest-turn-decides rule, languages, bounded work."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing import metadata as m
from octoroute.routing.metadata import (
    SIGNALS,
    RouteMetadata,
    estimate_tokens,
    infer_metadata,
    stated_metadata,
)
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.signals import scan_text
from octoroute.wire.messages import ContentPart, Message

N = Importance.NORMAL


def meta_of(text: str, *history: tuple[str, str], system: str | None = None) -> RouteMetadata:
    messages = [Message("system", system)] if system else []
    messages += [Message(role, content) for role, content in history]
    messages.append(Message("user", text))
    return infer_metadata(messages, N)


def tier(text: str, *history: tuple[str, str], system: str | None = None) -> Tier | None:
    decision = decide_by_rules(meta_of(text, *history, system=system), refine=True)
    return None if decision is None else decision.tier


# --- tokens and stated metadata --------------------------------------------------------------


def test_token_estimate_is_total_characters_over_four() -> None:
    messages = [Message("system", "x" * 10), Message("user", "y" * 7), Message("assistant", None)]
    assert estimate_tokens(messages) == 4
    assert estimate_tokens([Message("user", "Hello, world!")]) == 3
    assert estimate_tokens([Message("user", "a" * 1000)]) == 250


def test_token_estimate_counts_text_parts_only() -> None:
    parts = [
        ContentPart("text", "abcd"),
        ContentPart("image_url", None),
        ContentPart("text", "efgh"),
    ]
    assert estimate_tokens([Message("user", parts)]) == 2


def test_token_estimate_counts_code_points_not_bytes() -> None:
    assert estimate_tokens([Message("user", "😀" * 8)]) == 2


def test_stated_metadata_is_taken_as_given() -> None:
    meta = stated_metadata([Message("user", "hello")], Importance.HIGH, TaskType.CODE)
    assert meta == RouteMetadata(1, Importance.HIGH, TaskType.CODE, ())


# --- v1's known mistakes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "What is a postal code?",
        "What's the zip code for Beverly Hills?",
        "What's the function of the liver?",
        "How do I get rust off my bike chain?",
        "Is a python dangerous to humans?",
        "¿Qué es un código postal?",
        "Qu'est-ce qu'un code postal ?",
    ],
)
def test_everyday_words_that_v1_took_for_code_are_not_code(text: str) -> None:
    assert m.CODE not in meta_of(text).signals
    assert tier(text) is not Tier.DEEP


@pytest.mark.parametrize(
    "text", ["hi", "Hi!", "hey", "hello there", "thanks!", "ok cool", "bye 👋"]
)
def test_bare_greetings_and_acknowledgements_are_small_talk(text: str) -> None:
    meta = meta_of(text)
    assert meta.task_type is TaskType.CASUAL_CHAT
    assert meta.signals == (m.SMALLTALK,)
    assert tier(text) is Tier.FAST


def test_a_hard_thread_ending_in_thanks_is_small_talk() -> None:
    history = (
        ("user", "Prove that there are infinitely many primes p ≡ 1 mod 4."),
        ("assistant", "Suppose finitely many; let N = (2p1...pk)^2 + 1 ..."),
    )
    assert meta_of("thanks!", *history).task_type is TaskType.CASUAL_CHAT
    assert tier("thanks!", *history) is Tier.FAST


def test_small_talk_ending_in_a_hard_question_is_decided_by_the_question() -> None:
    history = (("user", "hey!"), ("assistant", "Hi! How are you?"), ("user", "good, you?"))
    assert tier("By the way, can you prove that the reals are uncountable?", *history) is Tier.DEEP


def test_a_greeting_does_not_hide_the_request() -> None:
    assert tier("hi! can you prove there are infinitely many primes p ≡ 1 (mod 4)?") is Tier.DEEP


def test_a_short_hard_prompt_goes_deep() -> None:
    meta = meta_of("prove there are infinitely many primes p ≡ 1 mod 4")
    assert m.PROOF in meta.signals
    assert tier("prove there are infinitely many primes p ≡ 1 mod 4") is Tier.DEEP


@pytest.mark.parametrize(
    "text",
    [
        "URGENT: what time zone is Paris in?",
        "CRITICAL!!! what's the capital of Canada",
        "ASAP please: what does RSVP mean?",
        "URGENTE: ¿cuál es la capital de Perú?",
        "紧急！一年有多少天？",
    ],
)
def test_urgency_alone_does_not_make_a_trivial_question_hard(text: str) -> None:
    meta = meta_of(text)
    assert m.URGENCY in meta.signals
    assert tier(text) is Tier.FAST


# --- signal families ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Fix this:\n```python\nprint(x\n```", m.CODE_FENCE),
        (
            "Traceback (most recent call last):\n  File \"a.py\", line 3\nKeyError: 'x'",
            m.STACK_TRACE,
        ),
        (
            'Exception in thread "main" java.lang.NullPointerException\n\tat a.B.c(B.java:3)',
            m.STACK_TRACE,
        ),
        ("why does main.rs not compile when I borrow twice", m.FILE_EXT),
        ("def f(x):\n    return x;\n}\nconst y = 2;", m.CODE_SYNTAX),
    ],
)
def test_code_detectors(text: str, signal: str) -> None:
    meta = meta_of(text)
    assert signal in meta.signals
    assert meta.task_type is TaskType.CODE


def test_language_names_in_context_make_a_vague_follow_up_code() -> None:
    history = (
        ("user", "Write a Python function that downloads a URL and returns the JSON body."),
        (
            "assistant",
            "```python\nimport requests\n\ndef fetch(url):\n    return requests.get(url).json()\n```",
        ),
    )
    meta = meta_of("and how would I test it?", *history)
    assert m.CODE in meta.signals
    assert m.FOLLOWUP in meta.signals
    assert tier("and how would I test it?", *history) is Tier.BALANCED


def test_a_topic_change_does_not_inherit_the_thread() -> None:
    history = (
        ("user", "Design a fault-tolerant job scheduler."),
        ("assistant", "Use a replicated log."),
    )
    assert tier("lol. anyway, what's a good name for a goldfish?", *history) is Tier.FAST


def test_yes_to_an_offer_continues_the_work() -> None:
    history = (
        ("user", "Write a Python class for a bank account with deposit and withdraw."),
        ("assistant", "```python\nclass Account: ...\n```\nShall I add tests?"),
    )
    meta = meta_of("yes please", *history)
    assert m.SMALLTALK not in meta.signals
    assert tier("yes please", *history) is Tier.BALANCED


def test_yes_to_an_offer_that_ends_in_a_greek_question_mark_continues_the_work() -> None:
    history = (
        ("user", "Γράψε μια κλάση Python για τραπεζικό λογαριασμό."),
        ("assistant", "```python\nclass Account: ...\n```\nΝα προσθέσω και δοκιμές;"),
    )
    meta = meta_of("ναι παρακαλώ", *history)
    assert m.SMALLTALK not in meta.signals
    assert tier("ναι παρακαλώ", *history) is Tier.BALANCED


@pytest.mark.parametrize(
    ("answer", "yes"),
    [
        ("```python\nclass Account: ...\n```\nهل أضيف اختبارات أيضا؟", "نعم من فضلك"),  # Arabic ؟
        ("```python\nclass Account: ...\n```\nآیا تست هم اضافه کنم؟", "بله لطفا"),  # Persian
        ("```python\nclass Account: ...\n```\n要我再加上测试吗？", "是的"),  # full-width ？
    ],
)
def test_yes_to_an_offer_that_ends_in_any_script_s_question_mark_continues_the_work(
    answer: str, yes: str
) -> None:
    history = (("user", "Write a Python class for a bank account."), ("assistant", answer))
    meta = meta_of(yes, *history)
    assert m.SMALLTALK not in meta.signals
    assert m.FOLLOWUP in meta.signals
    assert meta.task_type is TaskType.CODE
    # the same "yes" after an answer that asks nothing is an acknowledgement
    closed = (("user", "Write a Python class for a bank account."), ("assistant", "```python\n```"))
    assert m.FOLLOWUP not in meta_of(yes, *closed).signals


@pytest.mark.parametrize(
    "text",
    ["दिल्ली से आगरा कितनी दूर है?", "চাঁদ পৃথিবী থেকে কত দূরে?", "ఇండియా రాజధాని ఏది?"],
)
def test_a_short_question_in_an_indic_script_is_short(text: str) -> None:
    """Counted per two characters, these 4-6 word questions were 9-12 words; per run, as
    written, they are short turns, like the same question in English."""
    assert m.SHORT_TURN in meta_of(text).signals
    assert m.TERSE in meta_of(text).signals


def test_a_two_word_yes_in_tamil_accepts_an_offer() -> None:
    """Counted per two characters, "ஆமாம், செய்யுங்கள்" ("yes, do it") was 8 words, too long to
    be a yes; counted per run it is 2, and it continues the offered work."""
    history = (
        ("user", "Write a Python class for a bank account."),
        ("assistant", "```python\nclass Account: ...\n```\nShall I add tests?"),
    )
    meta = meta_of("ஆமாம், செய்யுங்கள்", *history)
    assert m.FOLLOWUP in meta.signals
    assert meta.task_type is TaskType.CODE


@pytest.mark.parametrize(
    "text", ["ما هي عاصمة كندا؟", "پایتخت کانادا کجاست؟", "کینیڈا کا دارالحکومت کیا ہے؟"]
)
def test_an_arabic_question_mark_is_a_question(text: str) -> None:
    assert scan_text(text).question
    assert m.QUESTION in meta_of(text).signals


@pytest.mark.parametrize(
    "text",
    [
        "Ποια είναι η πρωτεύουσα του Καναδά;",
        "Τι ώρα είναι;",
        "Πόσα κιλά ζυγίζει ένας ελέφαντας; Και πόσο ζει;",
    ],
)
def test_a_greek_question_ends_in_its_own_question_mark_not_in_code(text: str) -> None:
    meta = meta_of(text)
    assert m.QUESTION in meta.signals
    assert m.TECHNICAL not in meta.signals
    assert scan_text(text).syntax == 0
    assert tier(text) is Tier.FAST


@pytest.mark.parametrize(
    "text",
    [
        "Γιατί δεν μεταγλωττίζεται;\nint x = 1;\nint y = x + 1;\n",
        'Τι τυπώνει αυτό;\nprintf("Γεια");\nreturn 0;\n',
        "int x = 1;\nint y = 2;",
    ],
)
def test_a_semicolon_in_code_stays_code_in_greek_text(text: str) -> None:
    assert scan_text(text).syntax >= 1  # the ";" line ends
    assert meta_of(text).task_type is TaskType.CODE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Show that every finite integral domain is a field.", Tier.DEEP),
        ("Compute the eigenvalues of [[2, 1], [1, 2]].", Tier.DEEP),
        ("What is 12 times 13?", Tier.FAST),
        ("Design a URL shortener for 10k writes/s and 1M reads/s.", Tier.DEEP),
        ("Is double-checked locking safe in Java? Explain with the memory model.", Tier.DEEP),
        ("Threat-model a browser extension that syncs passwords.", Tier.DEEP),
        ("Write a haiku about autumn rain", Tier.FAST),
        ("Write a short story about a lighthouse keeper.", Tier.BALANCED),
        ("Write a 3000-word first chapter of a fantasy novel with three narrators.", Tier.DEEP),
        ("Summarize the plot of Hamlet in one sentence.", Tier.FAST),
        ("Summarize this article:\n\n" + "The council met on Tuesday. " * 80, Tier.BALANCED),
        ("What is the capital of Australia?", Tier.FAST),
        ("Explain how vaccines train the immune system.", Tier.BALANCED),
    ],
)
def test_signal_families_route_sensibly(text: str, expected: Tier) -> None:
    assert tier(text) is expected


def test_the_topic_of_pasted_text_does_not_outvote_the_instruction() -> None:
    paste = "The audit found a vulnerability; attackers exploit weak passwords and tokens. " * 40
    meta = meta_of("Summarize this report in three bullet points.\n\n" + paste)
    assert m.SUMMARY in meta.signals
    assert m.SECURITY not in meta.signals


def test_software_words_in_prose_to_summarise_do_not_make_it_code_or_design() -> None:
    notes = (
        "Please summarise the following meeting notes in three bullet points for the team. We "
        "reviewed the release plan, agreed to move the database migration to Tuesday so the "
        "on-call engineer can watch it, and asked the design group to send the final icons. "
        "Support asked for a short FAQ covering the new export button. The flaky integration "
        "test on the payments service must be fixed before the freeze, and the architecture "
        "review of the load-testing cluster moves to next week."
    )
    meta = meta_of(notes)
    assert meta.task_type is TaskType.DOCUMENT_SUMMARY
    assert m.CODE not in meta.signals
    assert m.DESIGN not in meta.signals
    # code itself still makes it code
    assert meta_of(notes + "\n\n```python\ndef migrate(db):\n    db.run()\n```").task_type is (
        TaskType.CODE
    )


# --- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "¡Hola!",
        "Guten Morgen",
        "Bonjour !",
        "你好",
        "こんにちは",
        "Olá",
        "Привет",
        "안녕하세요",
        "Merci beaucoup",
        "Ahoj",
        "Děkuji moc",
        "Bună ziua",
        "Mulțumesc frumos",
        "Szia",
        "Köszönöm szépen",
        "Καλημέρα",
        "Ευχαριστώ πολύ",
        "שלום",
        "תודה רבה",
        "Kumusta",
        "Maraming salamat",
        "สวัสดีครับ",
        "ขอบคุณค่ะ",
        "السلام علیکم",
        "بہت شکریہ",
        "خیلی ممنون",
        "Hyvää huomenta",
        "Kiitos paljon",
        "Godmorgen",
        "Tusind tak",
        "Hei hei",
        "Tusen takk",
        "Apa khabar",
        "Terima kasih banyak",
        "Habari za asubuhi",
        "Asante sana",
        "Bon dia",
        "Moltes gràcies",
        "Dobrý deň",
        "Ďakujem pekne",
        "Добро утро",
        "Много благодаря",
        "Dobro jutro",
        "Hvala lijepa",
        "Здраво",
        "Labas rytas",
        "Labai ačiū",
        "வணக்கம்",
        "மிக்க நன்றி",
        "खूप आभार",
        "నమస్కారం",
        "ధన్యవాదాలు",
    ],
)
def test_greetings_in_many_languages_are_small_talk(text: str) -> None:
    assert meta_of(text).task_type is TaskType.CASUAL_CHAT


@pytest.mark.parametrize(
    ("text", "task", "expected"),
    [
        ("Demuestra que la raíz cuadrada de 2 es irracional.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Escribe una función en Python que invierta una cadena.", TaskType.CODE, Tier.BALANCED),
        ("¿Cuál es la capital de Perú?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Beweise, dass es unendlich viele Primzahlen gibt.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        (
            "Schreibe eine Funktion in JavaScript, die ein Array sortiert.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("Was ist die Hauptstadt von Kanada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        (
            "Démontre que tout entier admet une décomposition en facteurs premiers.",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        (
            "Écris une fonction Python qui fusionne deux listes triées.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("Quelle est la capitale de l'Australie ?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("证明存在无穷多个素数。", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("用Python写一个函数，判断一个数是不是质数。", TaskType.CODE, Tier.BALANCED),
        ("法国的首都是哪里？", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("素数が無限に存在することを証明してください。", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        (
            "大規模な分散システムのアーキテクチャを設計する際の注意点を詳しく説明してください。",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        ("日本で一番高い山は何ですか？", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Докажите, что корень из двух иррационален.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Доведіть, що корінь із двох ірраціональний.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Яка столиця Канади?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Buktikan bahwa akar dua adalah bilangan irasional.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Apa ibu kota Kanada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Chứng minh rằng căn bậc hai của 2 là số vô tỉ.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Thủ đô của Canada là gì?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Dokažte, že odmocnina ze dvou je iracionální.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Napiš funkci v Pythonu, která obrátí řetězec.", TaskType.CODE, Tier.BALANCED),
        ("Jaké je hlavní město Kanady?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Demonstrează că radical din 2 este irațional.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Scrie o funcție în Python care inversează un șir.", TaskType.CODE, Tier.BALANCED),
        ("Care este capitala Canadei?", TaskType.QUESTION_ANSWER, Tier.FAST),
        (
            "Bizonyítsd be, hogy a kettő négyzetgyöke irracionális.",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        (
            "Írj egy függvényt Pythonban, amely megfordít egy sztringet.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("Mi Kanada fővárosa?", TaskType.QUESTION_ANSWER, Tier.FAST),
        (
            "Απόδειξε ότι η τετραγωνική ρίζα του 2 είναι άρρητος αριθμός.",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        (
            "Γράψε μια συνάρτηση σε Python που αντιστρέφει μια συμβολοσειρά.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("Ποια είναι η πρωτεύουσα του Καναδά", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("הוכח שהשורש הריבועי של 2 הוא אי רציונלי.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("כתוב פונקציה בפייתון שהופכת מחרוזת.", TaskType.CODE, Tier.BALANCED),
        ("מה הבירה של קנדה?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Patunayan na ang square root ng 2 ay irrational.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Sumulat ng function sa Python na bumabaligtad ng string.", TaskType.CODE, Tier.BALANCED),
        ("Ano ang kabisera ng Canada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("จงพิสูจน์ว่ารากที่สองของ 2 เป็นจำนวนอตรรกยะ", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("เขียนฟังก์ชัน Python ที่กลับลำดับสตริง", TaskType.CODE, Tier.BALANCED),
        ("เมืองหลวงของแคนาดาคืออะไร", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("ثابت کریں کہ 2 کا جذر غیر ناطق ہے۔", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Python میں ایک فنکشن لکھیں جو سٹرنگ کو الٹ دے۔", TaskType.CODE, Tier.BALANCED),
        ("کینیڈا کا دارالحکومت کیا ہے؟", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("ثابت کنید که رادیکال ۲ عدد گنگ است.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("یک تابع در پایتون بنویس که رشته را برعکس کند.", TaskType.CODE, Tier.BALANCED),
        ("پایتخت کانادا کجاست؟", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Todista, että kahden neliöjuuri on irrationaalinen.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Kirjoita Python-funktio, joka kääntää merkkijonon.", TaskType.CODE, Tier.BALANCED),
        ("Mikä on Kanadan pääkaupunki?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("প্রমাণ করো যে ২ এর বর্গমূল অমূলদ।", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Python এ একটি ফাংশন লেখো যা একটি স্ট্রিং উল্টে দেয়।", TaskType.CODE, Tier.BALANCED),
        ("কানাডার রাজধানী কোথায়?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Bevis at kvadratroden af 2 er irrationel.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Skriv en Python-funktion, der vender en streng om.", TaskType.CODE, Tier.BALANCED),
        ("Hvad er hovedstaden i Canada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Bevis at kvadratroten av 2 er irrasjonal.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Skriv en Python-funksjon som snur en streng.", TaskType.CODE, Tier.BALANCED),
        ("Kva er hovudstaden i Canada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        (
            "Buktikan bahawa punca kuasa dua bagi 2 ialah nombor tak nisbah.",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        ("Tulis fungsi Python yang menterbalikkan rentetan.", TaskType.CODE, Tier.BALANCED),
        ("Apakah ibu negara Kanada?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Thibitisha kuwa kuna namba tasa nyingi bila kikomo.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        (
            "Andika kitendakazi cha Python kinachogeuza mfuatano wa herufi.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("Mji mkuu wa Kanada ni upi?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Demostra que l'arrel quadrada de 2 és irracional.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Escriu una funció en Python que inverteixi una cadena.", TaskType.CODE, Tier.BALANCED),
        ("Quina és la capital del Canadà?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Dokážte, že odmocnina z dvoch je iracionálne číslo.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Napíš funkciu v Pythone, ktorá obráti reťazec.", TaskType.CODE, Tier.BALANCED),
        ("Aké je hlavné mesto Kanady?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Докажи, че корен квадратен от 2 е ирационално число.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Напиши функция на Python, която обръща низ.", TaskType.CODE, Tier.BALANCED),
        ("Коя е столицата на Канада?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Dokaži da je korijen iz 2 iracionalan broj.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("Napiši funkciju u Pythonu koja obrće string.", TaskType.CODE, Tier.BALANCED),
        ("Koji je glavni grad Kanade?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("Који је главни град Канаде?", TaskType.QUESTION_ANSWER, Tier.FAST),
        (
            "Įrodyk, kad kvadratinė šaknis iš 2 yra iracionalusis skaičius.",
            TaskType.DEEP_ANALYSIS,
            Tier.DEEP,
        ),
        ("Parašyk Python funkciją, kuri apverčia eilutę.", TaskType.CODE, Tier.BALANCED),
        ("Kokia yra Kanados sostinė?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("2 இன் வர்க்கமூலம் விகிதமுறா எண் என்று நிரூபிக்கவும்.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        (
            "ஒரு சரத்தை தலைகீழாக மாற்றும் Python செயல்பாட்டை எழுதுங்கள்.",
            TaskType.CODE,
            Tier.BALANCED,
        ),
        ("கனடாவின் தலைநகரம் எது?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("2 चे वर्गमूळ अपरिमेय आहे हे सिद्ध करा.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("स्ट्रिंग उलटी करणारे Python फंक्शन लिहा.", TaskType.CODE, Tier.BALANCED),
        ("कॅनडाची राजधानी कोणती आहे?", TaskType.QUESTION_ANSWER, Tier.FAST),
        ("2 యొక్క వర్గమూలం అకరణీయ సంఖ్య అని నిరూపించండి.", TaskType.DEEP_ANALYSIS, Tier.DEEP),
        ("స్ట్రింగ్\u200cను తిప్పే Python ఫంక్షన్ రాయండి.", TaskType.CODE, Tier.BALANCED),
        ("కెనడా రాజధాని ఏది?", TaskType.QUESTION_ANSWER, Tier.FAST),
    ],
)
def test_each_language_is_understood(text: str, task: TaskType, expected: Tier) -> None:
    assert meta_of(text).task_type is task
    assert tier(text) is expected


def test_summaries_in_other_languages() -> None:
    assert m.SUMMARY in meta_of("Resume este texto: La biblioteca abrirá los domingos.").signals
    assert m.SUMMARY in meta_of("Fasse den folgenden Text zusammen: Die Stadt plant viel.").signals
    assert m.SUMMARY in meta_of("请总结下面这段文字：今天天气很好。").signals
    assert m.SUMMARY in meta_of("この文章を要約してください。今日は晴れです。").signals


# --- robustness and bounded work --------------------------------------------------------------


def test_no_user_message_is_handled() -> None:
    meta = infer_metadata([Message("system", "You are helpful.")], N)
    assert meta.task_type is TaskType.QUESTION_ANSWER
    assert infer_metadata([], N).token_estimate == 0


def _elapsed(messages: list[Message]) -> float:
    """Best of three wall-clock runs: scheduler or GC noise on a shared machine only adds."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        infer_metadata(messages, N)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "text",
    [
        "a" * 2_000_000,
        "(" * 500_000,
        'File "' * 200_000,
        "\n    at " * 200_000,
        "1+" * 500_000,
        "SELECT " * 200_000,
        "你好" * 500_000,
        "🇯🇵" * 300_000,
        ("word " * 100 + "\n\n") * 4000,
    ],
)
def test_huge_adversarial_turns_take_bounded_time(text: str) -> None:
    assert _elapsed([Message("user", text)]) < 0.05


def test_many_messages_take_bounded_time() -> None:
    messages = [Message("user" if i % 2 else "assistant", "x " * 2000) for i in range(2048)]
    messages.append(Message("user", "why?"))
    assert _elapsed(messages) < 0.05


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000), st.sampled_from(list(Importance)))
def test_inference_never_raises_and_names_known_signals(text: str, importance: Importance) -> None:
    meta = infer_metadata([Message("user", text)], importance)
    assert _elapsed([Message("user", text)]) < 0.05
    assert set(meta.signals) <= SIGNALS
    assert meta.token_estimate == len(text) // 4


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant", "tool"]), st.text(max_size=500)),
        max_size=8,
    )
)
def test_inference_on_arbitrary_conversations(pairs: list[tuple[str, str]]) -> None:
    meta = infer_metadata([Message(role, text) for role, text in pairs], N)
    assert set(meta.signals) <= SIGNALS
