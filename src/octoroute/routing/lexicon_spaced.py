"""Keyword sets for languages written with spaces between words (Latin, Cyrillic, Arabic).

Same groups and matching as :mod:`octoroute.routing.lexicon_en`. Accents are folded before
matching (``explícame`` matches ``explicame``), so each phrase is listed once without them; that
also catches users who type without accents. Spanish, German and French are covered in depth;
Portuguese, Italian, Dutch, Swedish, Russian, Turkish and Arabic get the high-value groups
(greetings, lookups, proofs, code, summaries, design), enough to keep their everyday traffic off
the default tier.
"""

from __future__ import annotations

from typing import Final

ES: Final[dict[str, str]] = {
    "greet": ("hola | buenos dias | buenas tardes | buenas noches | buenas | saludos"),
    "thanks": (
        "gracias | muchas gracias | mil gracias | te lo agradezco | por tu ayuda | por todo"
    ),
    "smalltalk": (
        "que tal | como estas | como esta | como te va | adios | hasta luego | hasta manana | "
        "nos vemos | vale | genial | perfecto | de nada | chao | jaja | jajaja | bien | muy "
        "bien | encantado | encantada | quien eres | como te llamas"
    ),
    "filler": ("por | tu | su | la | el | y | muy | todo | todos | amigo | amiga | de | que"),
    "urgency": (
        "urgente | importante | critico | muy importante | rapido | inmediatamente | cuanto antes"
    ),
    "brief": ("brevemente | en una frase | en pocas palabras | corto"),
    "depth": (
        "en detalle | detallado | detallada | paso a paso | a fondo | en profundidad | "
        "riguroso | rigurosamente | exhaustivo | exhaustiva"
    ),
    "lookup": (
        "que es | cual es | cuales son | quien es | quien fue | quien escribio | donde esta | "
        "donde | cuando | cuantos | cuantas | cuanto | capital de | que significa | como se "
        "dice | a que hora"
    ),
    "explain": (
        "explica | explicame | explicar | explicacion | como funciona | por que | describe | "
        "describeme"
    ),
    "followup": ("y | tambien | y si | entonces | ahora | eso | esto | otra vez"),
    "code_strong": (
        "programacion | programar | codigo fuente | lenguaje de programacion | depurar | compilar"
    ),
    "code_weak": (
        "codigo | funcion | funciones | programa | implementa | implementar | script | "
        "variable | bucle | clase | error | base de datos | servidor | algoritmo | arreglo | "
        "factorial | recursiva | recursivo"
    ),
    "code_phrase": (
        "escribe una funcion | escribe un programa | escribe un script | en python | en "
        "javascript | en java | en rust | en go | este codigo | mi codigo | el codigo"
    ),
    "code_neg": ("codigo postal | codigo de vestimenta | codigo de area | funcion de"),
    "code_hard": ("desde cero | concurrente | rendimiento | distribuido | compilador | interprete"),
    "math": (
        "ecuacion | ecuaciones | resuelve | integral | derivada | probabilidad | matriz | "
        "polinomio | primo | primos | numeros primos | raiz cuadrada | irracional | racional "
        "| entero | enteros | triangulo | serie | sucesion | limite | infinitos | infinito | "
        "divisible | numeros"
    ),
    "math_hard": (
        "teoria de numeros | teoria de grupos | autovalores | valores propios | ecuaciones "
        "diferenciales | topologia | conjetura"
    ),
    "proof": (
        "demuestra | demostrar | demuestre | demostracion | prueba que | pruebe que | comprueba que"
    ),
    "design": (
        "arquitectura | disena | diseno | escalable | escalabilidad | distribuido | sistema "
        "distribuido | microservicios | tolerancia a fallos | idempotencia | alta "
        "disponibilidad | consistencia | replicacion | sistema de pagos"
    ),
    "security": (
        "seguridad | vulnerabilidad | vulnerabilidades | ataque | ataques | autenticacion | "
        "cifrado | contrasena | contrasenas"
    ),
    "concurrency": ("concurrencia | concurrente | hilos | condicion de carrera | interbloqueo"),
    "analysis": (
        "analiza | analizar | analisis | compara | comparar | comparacion | evalua | evaluar "
        "| critica | ventajas y desventajas | pros y contras | interpretaciones | causas"
    ),
    "summary": (
        "resume | resumen | resumir | resumeme | sintetiza | puntos clave | ideas principales"
    ),
    "creative_short": ("haiku | chiste | chistes | eslogan | adivinanza | lema"),
    "creative": (
        "poema | poemas | poesia | cuento | cuentos | historia | relato | cancion | fabula | "
        "guion | novela | soneto | versos"
    ),
    "creative_long": ("novela | capitulo | primer capitulo | guion"),
    "write_verb": ("escribe | escribeme | compon | cuentame | inventa | crea | redacta | dame"),
    "translate": ("traduce | traducir | traduccion"),
}
DE: Final[dict[str, str]] = {
    "greet": (
        "hallo | guten morgen | guten tag | guten abend | servus | moin | gruss gott | gruezi | tag"
    ),
    "thanks": ("danke | danke schon | vielen dank | dankeschon | besten dank | herzlichen dank"),
    "smalltalk": (
        "wie geht s | wie gehts | wie geht es dir | wie geht es ihnen | tschuss | bis bald | "
        "bis morgen | auf wiedersehen | gute nacht | alles klar | super | toll | prima | "
        "passt | genau | kein problem | bitte schon | gern geschehen | wer bist du"
    ),
    "filler": ("zusammen | euch | dir | ihnen | und | sehr | ja | nochmal | leute | mal"),
    "urgency": ("dringend | wichtig | sehr wichtig | sofort | eilig | schnell | kritisch"),
    "brief": ("kurz | kurzgefasst | in einem satz | knapp"),
    "depth": (
        "ausfuhrlich | detailliert | im detail | schritt fur schritt | grundlich | tiefgehend "
        "| rigoros | umfassend"
    ),
    "lookup": (
        "was ist | was sind | wer ist | wer war | wer hat | wo ist | wo liegt | wann | wie "
        "viele | wie viel | hauptstadt | wie hoch | wie alt | welche | welcher | was bedeutet "
        "| wie sagt man"
    ),
    "explain": (
        "erklare | erklaren | erklar | erklarung | wie funktioniert | warum | wieso | weshalb "
        "| beschreibe"
    ),
    "followup": ("und | auch | was wenn | und wenn | dann | jetzt | das | dies"),
    "code_strong": (
        "programmierung | programmieren | programmiersprache | quellcode | debuggen | kompilieren"
    ),
    "code_weak": (
        "code | funktion | funktionen | programm | implementiere | implementieren | skript | "
        "variable | schleife | klasse | fehler | datenbank | server | algorithmus | array | "
        "sortiert | sortieren"
    ),
    "code_phrase": (
        "schreibe eine funktion | schreib eine funktion | schreibe ein programm | schreibe "
        "ein skript | in python | in javascript | in java | mein code | dieser code | den "
        "code"
    ),
    "code_neg": ("funktion der | funktion von"),
    "code_hard": ("von grund auf | nebenlaufig | verteilt | compiler"),
    "math": (
        "gleichung | gleichungen | lose | integral | ableitung | wahrscheinlichkeit | matrix "
        "| polynom | primzahl | primzahlen | wurzel | irrational | ganze zahlen | ganzzahl | "
        "dreieck | folge | reihe | grenzwert | unendlich | unendlich viele | teilbar | zahlen"
    ),
    "math_hard": (
        "zahlentheorie | gruppentheorie | eigenwerte | differentialgleichung | "
        "differentialgleichungen | topologie | vermutung"
    ),
    "proof": ("beweise | beweisen | beweis | zeige dass | zeigen sie dass | weise nach"),
    "design": (
        "architektur | entwerfe | entwerfen | entwurf | skalierbar | skalierbare | "
        "skalierbaren | skalierbarkeit | verteilt | verteiltes | verteilte | microservices | "
        "ausfallsicherheit | hochverfugbarkeit | konsistenz | event sourcing | kafka | "
        "replikation"
    ),
    "security": (
        "sicherheit | sicherheitslucke | schwachstelle | schwachstellen | angriff | angriffe "
        "| authentifizierung | verschlusselung | passwort | passworter"
    ),
    "concurrency": (
        "nebenlaufigkeit | nebenlaufig | parallelitat | deadlock | wettlaufsituation | race "
        "condition"
    ),
    "analysis": (
        "analysiere | analysieren | analyse | vergleiche | vergleichen | vergleich | bewerte "
        "| bewerten | bewertung | vor und nachteile | kritik | unterschied | unterschiede"
    ),
    "summary": ("fasse | zusammenfassen | zusammenfassung | kernaussagen | wichtigsten punkte"),
    "creative_short": ("witz | witze | haiku | slogan | reim | ratsel | spruch"),
    "creative": (
        "gedicht | gedichte | geschichte | kurzgeschichte | erzahlung | marchen | lied | "
        "liedtext | songtext | roman | sonett | drehbuch | fabel | strophe"
    ),
    "creative_long": ("roman | kapitel | erstes kapitel | drehbuch"),
    "write_verb": (
        "schreibe | schreib | verfasse | dichte | erzahle | erzahl | erfinde | erstelle | gib mir"
    ),
    "translate": ("ubersetze | ubersetzen | ubersetzung"),
}
FR: Final[dict[str, str]] = {
    "greet": ("bonjour | salut | bonsoir | coucou | allo | bonne journee"),
    "thanks": (
        "merci | merci beaucoup | merci bien | je te remercie | je vous remercie | mille mercis"
    ),
    "smalltalk": (
        "comment ca va | ca va | comment vas tu | comment allez vous | au revoir | a bientot "
        "| a plus | a demain | bonne nuit | d accord | super | genial | parfait | de rien | "
        "pas de probleme | qui es tu | enchante | enchantee | mdr"
    ),
    "filler": (
        "a | tous | toi | vous | et | tres | bien | encore | le | la | les | pour | ton | "
        "votre | aide | tout"
    ),
    "urgency": ("urgent | urgence | important | tres important | immediatement | au plus vite"),
    "brief": ("brievement | en bref | en une phrase | court"),
    "depth": (
        "en detail | detaille | detaillee | etape par etape | en profondeur | approfondi | "
        "approfondie | rigoureux | rigoureuse | rigoureusement | exhaustif"
    ),
    "lookup": (
        "qu est ce que | qu est ce qu | quel est | quelle est | quels sont | quelles sont | "
        "qui est | qui a | ou est | ou se trouve | quand | combien | capitale | que signifie "
        "| comment dit on | quel jour | quelle heure"
    ),
    "explain": (
        "explique | expliquer | explique moi | expliquez | explication | comment fonctionne | "
        "comment marche | pourquoi | decris"
    ),
    "followup": ("et | aussi | et si | alors | maintenant | ca | cela"),
    "code_strong": ("programmation | langage de programmation | code source | deboguer"),
    "code_weak": (
        "code | fonction | fonctions | programme | implemente | implementer | script | "
        "variable | boucle | classe | erreur | base de donnees | serveur | algorithme | "
        "listes | triees | tableau"
    ),
    "code_phrase": (
        "ecris une fonction | ecrivez une fonction | ecris un programme | ecris un script | "
        "en python | en javascript | en java | mon code | ce code | le code"
    ),
    "code_neg": (
        "code postal | code vestimentaire | code de la route | code civil | code penal | "
        "fonction de"
    ),
    "code_hard": ("a partir de zero | distribue | compilateur"),
    "math": (
        "equation | equations | resous | resoudre | integrale | derivee | probabilite | "
        "matrice | polynome | nombres premiers | facteurs premiers | racine carree | "
        "irrationnel | rationnel | entier | entiers | triangle | suite | serie | limite | "
        "infinite | infini | divisible | nombres | decomposition"
    ),
    "math_hard": (
        "theorie des nombres | theorie des groupes | valeurs propres | equations "
        "differentielles | topologie | conjecture"
    ),
    "proof": (
        "demontre | demontrer | demontrez | demonstration | prouve | prouver | prouvez | "
        "preuve | montrer que | montrez que | montre que"
    ),
    "design": (
        "architecture | concevoir | conception | evolutive | distribue | distribuee | systeme "
        "distribue | microservices | tolerance aux pannes | haute disponibilite | coherence | "
        "idempotence | replication"
    ),
    "security": (
        "securite | securise | securisee | vulnerabilite | vulnerabilites | attaque | "
        "attaques | authentification | chiffrement | mot de passe | mots de passe"
    ),
    "concurrency": (
        "programmation concurrente | acces concurrents | interblocage | condition de course | "
        "verrou | verrous | mutex"
    ),
    "analysis": (
        "analyse | analyser | analysez | comparer | comparaison | evalue | evaluer | "
        "evaluation | critique | avantages et inconvenients | difference | differences"
    ),
    "summary": (
        "resume | resumer | resumez | resume moi | synthese | synthetise | points cles | "
        "idees principales"
    ),
    "creative_short": ("blague | blagues | haiku | slogan | devinette | calembour"),
    "creative": (
        "poeme | poemes | poesie | histoire | conte | chanson | paroles | roman | sonnet | "
        "scenario | fable | recit | vers"
    ),
    "creative_long": ("roman | chapitre | premier chapitre | scenario"),
    "write_verb": (
        "ecris | ecrivez | ecrire | compose | raconte | racontez | invente | redige | cree | "
        "donne moi"
    ),
    "translate": ("traduis | traduire | traduction | traduisez"),
}
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
