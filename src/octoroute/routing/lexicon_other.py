"""Smaller keyword sets for more languages written with spaces (Latin, Cyrillic, Arabic script).

Same groups and matching as :mod:`octoroute.routing.lexicon_en`, accents folded. Portuguese,
Italian, Dutch, Swedish, Russian, Turkish and Arabic get the high-value groups (greetings,
lookups, proofs, code, summaries, design), enough to keep their everyday traffic off the default
tier; a request in any other language still gets the language-neutral detectors (code, formulas,
sizes) and the default tier.
"""

from __future__ import annotations

from typing import Final

PT_IT: Final[dict[str, str]] = {
    "greet": ("ola | oi | bom dia | boa tarde | boa noite | ciao | buongiorno | buonasera | salve"),
    "thanks": (
        "obrigado | obrigada | muito obrigado | muito obrigada | valeu | grazie | grazie "
        "mille | ti ringrazio"
    ),
    "smalltalk": (
        "tudo bem | tudo bom | como vai | como voce esta | tchau | ate logo | ate mais | "
        "beleza | de nada | come stai | come va | arrivederci | a presto | buonanotte | va "
        "bene | perfetto | prego"
    ),
    "lookup": (
        "qual e | quais sao | o que e | quem e | quem foi | onde fica | quantos | quantas | "
        "capital do | capital da | quali sono | che cos e | cos e | chi e | chi era | dove si "
        "trova | quanti | quante | capitale"
    ),
    "explain": (
        "explique | explica | como funciona | por que | spiega | spiegami | come funziona | perche"
    ),
    "code_weak": (
        "codigo | funcao | programa | implemente | codice | funzione | programma | implementa "
        "| stringa"
    ),
    "code_phrase": (
        "escreva uma funcao | em python | em java | scrivi una funzione | in java | in python"
    ),
    "math": (
        "triangulo | angulos | soma | equacao | primos | raiz quadrada | irracional | inteiro "
        "| derivada | probabilidade | equazione | numeri primi | radice quadrata | "
        "irrazionale | triangolo | integrale | probabilita"
    ),
    "proof": (
        "prove que | demonstre | demonstrar | provar | prova que | dimostra | dimostrare | "
        "dimostrazione | prova che"
    ),
    "design": (
        "arquitetura | escalavel | distribuido | microsservicos | architettura | scalabile | "
        "distribuito | microservizi"
    ),
    "security": (
        "seguranca | vulnerabilidade | autenticacao | sicurezza | vulnerabilita | autenticazione"
    ),
    "concurrency": ("concorrencia | concorrenza"),
    "analysis": (
        "analise | analisar | comparar | avalie | analizza | analizzare | confronta | valuta"
    ),
    "summary": ("resuma | resumo | riassumi | riassunto | riassumere | sintesi"),
    "creative_short": ("piada | haicai | barzelletta"),
    "creative": (
        "poema | historia | conto | cancao | romance | poesia | racconto | storia | canzone | "
        "romanzo | favola"
    ),
    "write_verb": (
        "escreva | escreve | conte | crie | scrivi | scrivere | racconta | inventa | crea"
    ),
    "urgency": ("urgente | importante"),
    "depth": (
        "em detalhe | detalhado | passo a passo | in dettaglio | dettagliato | passo dopo "
        "passo | approfondito"
    ),
    "area_strong": ("condicao de corrida | sistema distribuido | sistema distribuito"),
}
NORDIC_NL: Final[dict[str, str]] = {
    "greet": (
        "hoi | goedemorgen | goedemiddag | goedenavond | hej | hejsan | god morgon | god "
        "kvall | tjena"
    ),
    "thanks": ("dank je | dank u | bedankt | dank je wel | tack | tack sa mycket | tusen tack"),
    "smalltalk": ("hoe gaat het | tot ziens | doei | hur mar du | hur ar laget | hej da | vi ses"),
    "lookup": (
        "wat is | wie is | waar is | wanneer | hoeveel | hoofdstad | vad ar | vem ar | var "
        "ligger | hur manga | huvudstad"
    ),
    "explain": ("leg uit | waarom | hoe werkt | varfor | forklara"),
    "code_weak": ("functie | programma | kod | funktion"),
    "proof": ("bewijs | bewijzen | toon aan | bevisa | bevis"),
    "summary": ("vat samen | samenvatting | samenvatten | sammanfatta | sammanfattning"),
    "creative": ("gedicht | verhaal | liedje | dikt | berattelse"),
    "write_verb": ("schrijf | skriv"),
    "analysis": ("analyseer | vergelijk | jamfor"),
}
RU: Final[dict[str, str]] = {
    "greet": ("привет | здравствуйте | здравствуй | добрый день | доброе утро | добрый вечер"),
    "thanks": ("спасибо | спасибо большое | благодарю"),
    "smalltalk": (
        "как дела | как ты | как поживаешь | пока | до свидания | до встречи | хорошо | "
        "отлично | ладно | понятно"
    ),
    "filler": ("а | и | тебе | вам"),
    "lookup": (
        "что такое | кто такой | кто такая | кто написал | где находится | где | когда | "
        "сколько | столица | какая | какой | какое | какие"
    ),
    "explain": ("объясни | объясните | почему | как работает | расскажи"),
    "code_strong": ("программирование | на питоне"),
    "code_weak": (
        "код | функция | функцию | программа | программу | реализуй | реализовать | питон"
    ),
    "code_phrase": ("напиши функцию | на python"),
    "math": (
        "уравнение | интеграл | производная | вероятность | матрица | простые числа | простых "
        "чисел | корень | корень из | иррационален | иррационально | иррациональное | целое | "
        "треугольник | бесконечно много | число | числа | двух"
    ),
    "math_hard": (
        "теория чисел | собственные значения | дифференциальные уравнения | топология | гипотеза"
    ),
    "proof": ("докажите | докажи | доказать | доказательство | покажите что"),
    "design": (
        "архитектура | архитектуру | масштабируемая | масштабируемый | распределенная | "
        "распределенный | распределенной | микросервисы | отказоустойчивость"
    ),
    "security": ("безопасность | уязвимость | уязвимости | аутентификация | шифрование"),
    "concurrency": (
        "параллелизм | конкурентность | многопоточность | взаимоблокировка | гонка данных | дедлок"
    ),
    "analysis": (
        "проанализируй | проанализируйте | анализ | сравни | сравните | сравнение | оцени"
    ),
    "summary": ("перескажи | кратко перескажи | резюмируй | краткое содержание | суммируй"),
    "creative_short": ("шутку | анекдот | хайку | слоган"),
    "creative": (
        "стихотворение | стих | стихи | рассказ | историю | сказку | сказка | песню | роман"
    ),
    "write_verb": ("напиши | напишите | сочини | придумай"),
    "urgency": ("срочно | важно | критично"),
    "depth": ("подробно | детально | пошагово | строго"),
    "translate": ("переведи | перевод"),
}
TR_AR: Final[dict[str, str]] = {
    "greet": ("merhaba | selam | gunaydin | iyi aksamlar | مرحبا | السلام عليكم | أهلا | اهلا"),
    "thanks": ("tesekkurler | tesekkur ederim | sagol | شكرا | شكرا جزيلا"),
    "smalltalk": ("nasilsin | naber | hosca kal | gorusuruz"),
    "lookup": (
        "nedir | kimdir | nerede | ne zaman | kac | baskenti | ما هي | ما هو | من هو | أين | "
        "متى | كم | عاصمة"
    ),
    "code_weak": ("kod | fonksiyon"),
    "proof": ("kanitla | ispatla | kanit"),
    "design": ("mimari | mimarisi | tasarla | tasarim | olceklenebilir | dagitik"),
    "security": ("guvenli | guvenlik | saldiri | saldirilari | kimlik dogrulama"),
    "analysis": ("analiz | karsilastir"),
    "summary": ("ozetle | ozet"),
    "creative": ("siir | hikaye"),
    "write_verb": ("yaz"),
}
