"""Keyword sets for languages written with spaces between words (Latin, Cyrillic, Arabic).

Same groups and matching as :mod:`octoroute.routing.lexicon_en`. Accents are folded before
matching (``explícame`` matches ``explicame``), so each phrase is listed once without them; that
also catches users who type without accents. This file covers Spanish, German and French in
depth; :mod:`octoroute.routing.lexicon_other` has the smaller sets for other languages.
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
        "divisible | numeros | impares | pares | impar | par | suma"
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
        "disponibilidad | consistencia | replicacion | sistema de pagos | alta carga | gran "
        "escala | sistema de colas | cola de mensajes | colas | millones de | sin perder | "
        "perder mensajes"
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
    "area_strong": (
        "arquitectura de software | sistema distribuido | condicion de carrera | concurrencia "
        "| microservicios"
    ),
    "code_noun": ("funcion | script | programa | clase | metodo | consulta"),
    "howto": ("como puedo | como hago | como se hace | mejores practicas | consejos para"),
    "topic_change": ("por cierto | otra pregunta | cambiando de tema"),
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
        "replikation | entwirf | entwickle | konzipiere | mandantenfahig | mandantenfahige | "
        "mandantenfahigen | berechtigungskonzept | rollen und rechte | audit log | unter last "
        "| hohe last | lastspitzen"
    ),
    "security": (
        "sicherheit | sicherheitslucke | schwachstelle | schwachstellen | angriff | angriffe "
        "| authentifizierung | verschlusselung | passwort | passworter | berechtigungen | "
        "berechtigungskonzept | zugriffskontrolle"
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
        "schreibe | schreib | verfasse | dichte | erzahle | erzahl | erfinde | erstelle | gib "
        "mir | entwirf"
    ),
    "translate": ("ubersetze | ubersetzen | ubersetzung"),
    "area_strong": (
        "architektur | nebenlaufigkeit | race condition | deadlock | verteiltes system | "
        "berechtigungskonzept"
    ),
    "code_noun": ("funktion | skript | programm | klasse | methode | abfrage"),
    "howto": ("wie kann ich | wie mache ich | tipps fur | best practices"),
    "topic_change": ("ubrigens | andere frage"),
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
        "idempotence | replication | forte charge | a forte charge | haute charge | montee en "
        "charge | systeme de reservation"
    ),
    "security": (
        "securite | securise | securisee | vulnerabilite | vulnerabilites | attaque | "
        "attaques | authentification | chiffrement | mot de passe | mots de passe"
    ),
    "concurrency": (
        "programmation concurrente | acces concurrents | interblocage | condition de course | "
        "verrou | verrous | mutex | conditions de course | condition de concurrence | "
        "conditions de concurrence | acces concurrent"
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
    "area_strong": (
        "conditions de course | condition de course | systeme distribue | interblocage"
    ),
    "code_noun": ("fonction | script | programme | classe | methode | requete"),
    "howto": ("comment puis je | comment faire | conseils pour | bonnes pratiques"),
    "topic_change": ("au fait | autre question | sinon"),
}
