"""English keyword sets for the routing signals.

Each group maps to phrases matched as whole words (case- and accent-folded) by
:mod:`octoroute.routing.signals`; ``{a,b}`` expands to alternatives at import time, so
``summari{ze,se}`` is two phrases. A group is scored by the number of *distinct* phrases that
occur, never by repetitions, so a long paste that says "code" forty times is still one hint.

The sets are deliberately about *what the user asks for*, not topics in general: "code" alone is
a weak hint, "postal code" cancels it, and language names that are also ordinary words (Python,
Rust, Java) count for less than unambiguous ones (JavaScript, Kotlin, SQL).
"""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, str]] = {
    "greet": (
        "hi | hii | hello | hey | heya | hiya | howdy | yo | sup | greetings | hallo | good "
        "{morning,afternoon,evening,night,day} | morning | evening | gm | hi there"
    ),
    "thanks": (
        "thanks | thank you | thx | ty | tysm | cheers | much appreciated | appreciate it | "
        "many thanks | thank u | thanks a lot | thanks a bunch"
    ),
    "smalltalk": (
        "how are you | how are u | how r u | how s it going | how is it going | how are "
        "things | how have you been | what s up | whats up | wassup | nice to meet you | "
        "pleased to meet you | bye | goodbye | good bye | bye bye | see you | see ya | cya | "
        "talk later | talk tomorrow | talk to you later | ttyl | ok | okay | k | kk | cool | "
        "great | nice | awesome | perfect | sweet | lol | lmao | haha | hahaha | hehe | sure "
        "| got it | sounds good | no worries | no problem | you re welcome | you re the best "
        "| you rock | love it | funny | that worked | it works | it worked | that fixed it | "
        "that helps | that helped | helpful | makes sense | fair enough | i see | interesting "
        "| wow | yay | yes | no | nope | yep | yeah | who are you | what s your name | what "
        "is your name | are you a {robot,bot,human,ai} | are you real | who made you | i m "
        "bored | talk to me | i m back | you win | good job | well done | never mind | nvm"
    ),
    "filler": (
        "there | so | much | very | really | a | lot | again | all | everyone | guys | friend "
        "| buddy | mate | you | too | that | was | it | is | i | m | s | re | me | my | just "
        "| oh | well | and | then | for | the | this | today | tomorrow | tonight | later | "
        "soon | now | please | pls | man | dude | bro | sir | team | folks | for your help | "
        "for the help"
    ),
    "urgency": (
        "urgent | urgently | asap | critical | important | importantly | emergency | "
        "immediately | right now | priority | high priority | time sensitive | hurry | quick "
        "| quickly | super important | extremely important | very important | for my job | "
        "for work | deadline"
    ),
    "brief": (
        "briefly | brief | in short | short answer | one word | in one sentence | one "
        "sentence | one line | one liner | yes or no | just the answer | tl dr | in a "
        "nutshell | quick question | quickly"
    ),
    "depth": (
        "in detail | in depth | in-depth | detailed | step by step | thorough | thoroughly | "
        "comprehensive | comprehensively | exhaustive | rigorous | rigorously | formally | "
        "formal proof | deep dive | from first principles | nuanced | critically | edge cases "
        "| production ready | production grade | at scale | trade {offs,off} | tradeoffs | "
        "state of the art | justify | long term effects | with the math | carefully | "
        "research | current research | according to research | the evidence | studies show | "
        "long term | long term health effects | methodology | walk me through a methodology | "
        "rigorously | what is known"
    ),
    "lookup": (
        "what is | what s | what are | what was | what were | who is | who was | who wrote | "
        "who invented | who painted | who discovered | who won | who are | when is | when was "
        "| when did | when does | where is | where are | where was | which | how many | how "
        "much | how old | how tall | how far | how long | how big | how heavy | what year | "
        "what time | what day | what date | what color | what colour | capital of | "
        "population of | define | definition | meaning of | synonym | antonym | spell | "
        "spelling | plural of | stand for | abbreviation | convert | how do you say | how do "
        "i say | is a | is an | is it | are there | does a | recommend | what does"
    ),
    "explain": (
        "explain | explanation | how does | how did | why does | why do | why did | why is | "
        "why are | why was | why | what causes | what caused | describe | tell me about | "
        "walk me through | teach me | help me understand | eli5 | in simple terms | how it "
        "works | how they work | intuition | sketch why"
    ),
    "affirm": (
        "yes | yeah | yep | yup | sure | ok | okay | go ahead | please do | do it | sounds "
        "good | yes please | si | ja | oui | da | claro | bitte | d accord | vale | go for it "
        "| let s do it | correct | right | exactly"
    ),
    "proceed": (
        "continue | go on | keep going | carry on | more | next | finish it | the rest | and "
        "then | continúa | continua | weiter | mach weiter | continue s il te plait | 继续 | "
        "続けて | 続き"
    ),
    "followup": (
        "and | also | what if | what about | how about | instead | then | now | this | that | "
        "it | these | those | there | same | again | more | another | too | as well | else | "
        "why | ok | so"
    ),
    "code_strong": (
        "programming | programmer | programmers | llvm | cuda | opencl | simd | shader | glsl "
        "| hlsl | verilog | vhdl | fpga | x86 | arm64 | assembly language | compiler pass | "
        "javascript | typescript | golang | kotlin | haskell | php | sql | mysql | postgresql "
        "| postgres | sqlite | mongodb | regex | regexp | json | yaml | html | css | bash | "
        "zsh | powershell | dockerfile | docker | kubernetes | kubectl | k8s | git | github | "
        "gitlab | npm | yarn | pip | cargo | rustc | gcc | clang | cmake | webpack | react | "
        "vue | angular | svelte | django | flask | fastapi | laravel | spring boot | numpy | "
        "pandas | pytorch | tensorflow | jupyter | compiler | debugger | gdb | segfault | "
        "stacktrace | traceback | api | apis | sdk | backend | frontend | refactor | "
        "refactoring | debug | debugging | bytecode | recursion | data structure | linked "
        "list | binary tree | binary search | hash map | hashmap | hashtable | big o | unit "
        "test | unit tests | pytest | jest | junit | pull request | merge conflict | rebase | "
        "asyncio | goroutine | goroutines | cuda | webassembly | wasm | nodejs | scala | "
        "elixir | erlang | clojure | ocaml | fortran | cobol | matlab | perl | lua | dart | "
        "flutter | terraform | ansible | nginx | jvm | gradle | maven | linux | ubuntu | "
        "shell script | awk | sed | grep | graphql | grpc | protobuf | type hints | type hint "
        "| list comprehension | for loop | while loop | null pointer | syntax error | stack "
        "trace | memory leak | off by one | time complexity | space complexity | source code "
        "| codebase | localhost | stdout | stderr | argparse | gunicorn | useeffect | "
        "usestate | setstate | quicksort | mergesort | bubble sort | sorting algorithm | "
        "leetcode | cli | ide | vscode | typescript interface | data class | data classes | "
        "dataframe | csv file | command line | f string | github actions | ci pipeline | heap "
        "snapshot | heap snapshots | memory leak | garbage collection | modulenotfounderror | "
        "importerror | npm install | pip install | callback | async await"
    ),
    "code_weak": (
        "python | java | rust | ruby | swift | code | coding | function | functions | method "
        "| methods | class | classes | variable | variables | loop | loops | array | arrays | "
        "bug | bugs | script | scripts | query | queries | database | server | endpoint | "
        "library | package | module | framework | implement | implementation | snippet | "
        "syntax | error | exception | compile | deploy | deployment | app | program | "
        "programs | parse | parser | parsing | crash | crashes | crashing | repository | repo "
        "| terminal | console | struct | enum | pointer | interface | callback | promise | "
        "closure | closures | iterator | decorator | macro | lambda | handler | middleware | "
        "string | integer | boolean | null | undefined | install | component | http | tests | "
        "testing | dependency | dependencies | runtime | build | compiles | push | commit | "
        "branch | thread | threads | idiomatic | cache | sort | sorting | algorithm | "
        "algorithms | file | files | folder | directory | slice | slices | int | ints | float "
        "| floats | dict | tuple | scrape | scrapes | scraper | scraping | url | urls | node "
        "| heap | regexes | spreadsheet macro | workflow | div | span | flexbox | selector | "
        "stylesheet | element | elements | dom"
    ),
    "code_phrase": (
        "write a {function,script,program,class,method,query,regex,test,tests,parser} | write "
        "code | write some code | this code | my code | the code | following code | code "
        "review | review my code | code snippet | this function | my function | this script | "
        "my script | this component | this program | my program | this class | this module | "
        "this loop | this query | this error | in "
        "{python,javascript,java,rust,go,c,ruby,swift,kotlin,typescript,bash,sql,c++} | using "
        "{python,javascript,java,rust,go,ruby,swift} | python {script,function,code} | won t "
        "compile | doesn t compile | compile error | runtime error | unit tests | http "
        "handler | one liner | pull request"
    ),
    "code_neg": (
        "postal code | zip code | area code | dress code | country code | morse code | code "
        "of conduct | promo code | discount code | qr code | bar code | genetic code | da "
        "vinci code | cheat code | function of | function calling | python snake | is a "
        "python | pet python | ball python | pythons | rust off | remove rust | java island | "
        "cup of java | the island | an island | ruby ring"
    ),
    "code_hard": (
        "lock free | wait free | memory ordering | memory model | compiler | interpreter | "
        "tokenizer | kernel | llvm | cuda | simd | assembly | jit | garbage collector | "
        "allocator | b tree | btree | red black tree | raft | paxos | consensus | rate "
        "limiter | lru cache | zero copy | aliasing | race condition | race conditions | "
        "deadlock | deadlocks | data race | std atomic | atomicity | lock free queue | leader "
        "election | log replication"
    ),
    "code_perf": (
        "from scratch | distributed | o 1 | o n | million | billion | production ready | "
        "scalable | optimize | optimise | performance | complexity | thread safe | concurrent "
        "| concurrency | atomic | throughput | latency | memory bounded | benchmark | "
        "profiling | generic over | heap | leaks memory | memory leak | in production | "
        "without downtime | simd | plugin system | sandboxing | untrusted | streaming api | "
        "worker pool | rate limit | rate limits | graceful shutdown | real time | bounded | "
        "backpressure | connection pool"
    ),
    "math": (
        "equation | equations | solve | integral | integrals | integrate | derivative | "
        "derivatives | differentiate | probability | matrix | matrices | polynomial | prime | "
        "primes | algebra | calculus | geometry | triangle | sequence | series | limit | "
        "logarithm | exponent | factorial | statistics | variance | standard deviation | "
        "vector | vectors | fraction | divisible | divides | remainder | modulo | integer | "
        "integers | real numbers | irrational | rational | converge | converges | convergent "
        "| diverge | diverges | inequality | theorem | lemma | square root | sqrt | "
        "continuous | differentiable | bounded | monotone | recurrence | how many ways | "
        "combinatorics | permutations | combinations | expected value | uncountable | "
        "countable | infinitely many | probability that | commutative | associative | "
        "idempotent | semilattice | lattice | monotonic | radicals | compound interest | "
        "expected number | planar | equals | consecutive integers | diagonalizable"
    ),
    "math_context": (
        "graph | vertices | vertex | edges | function f | for all | for every | odd | even | "
        "angles | set of | algorithm | terminates | optimal | finite | infinite | number of | "
        "numbers | sum | product | mod | tree | n | k | x | integer n | every integer | "
        "correct | correctness | always"
    ),
    "math_hard": (
        "eigenvalue | eigenvalues | eigenvector | eigenvectors | manifold | manifolds | "
        "homomorphism | isomorphism | isomorphic | galois | riemann | hilbert space | banach "
        "| lebesgue | measure theory | topology | topological | homology | cohomology | "
        "functor | category theory | diophantine | number theory | group theory | abelian | "
        "integral domain | field extension | quadratic residue | quadratic residues | "
        "stochastic | differential equation | differential equations | pde | navier stokes | "
        "fourier transform | laplace transform | jordan normal form | spectral | ergodic | "
        "martingale | brownian motion | olympiad | putnam | conjecture | np complete | np "
        "hard | halting problem | undecidable | turing machine | godel | incompleteness | "
        "generating function | generating functions | asymptotic | closed form | closed "
        "formula | markov chain | black scholes | projective plane | cauchy schwarz | inner "
        "product | catalan numbers | uncountable | lagrangian | hamiltonian | tensor | "
        "quantum field | general relativity | group of order | ring theory | quintic | in "
        "radicals | abel ruffini | solvable group | goldbach | twin prime | twin primes | "
        "collatz | riemann hypothesis | planar graph | colorable | four color | harmonic "
        "series | 5 colorable | ramsey | ramsey number"
    ),
    "proof": (
        "prove | proof | proofs | disprove | prove or disprove | show that | demonstrate that "
        "| derive | derivation | by induction | by contradiction | q e d | qed | justify "
        "rigorously | rigorous proof"
    ),
    "design": (
        "system design | design a system | architecture | architect | architecting | scalable "
        "| scalability | distributed system | distributed systems | distributed | "
        "microservice | microservices | monolith | sharding | shard | partitioning | "
        "replication | consensus | raft | paxos | cap theorem | eventual consistency | strong "
        "consistency | consistency | high availability | fault tolerance | fault tolerant | "
        "failover | load balancer | load balancing | message queue | kafka | rabbitmq | event "
        "sourcing | cqrs | saga pattern | idempotency | idempotent | multi region | active "
        "active | multi tenant | zero downtime | throughput | requests per second | writes s "
        "| reads s | qps | schema | data model | indexing strategy | caching strategy | cdn | "
        "rate limiting | rate limiter | backpressure | at scale | trade offs | tradeoffs | "
        "url shortener | key value store | migration | rebalance | effectively once | exactly "
        "once | design | designing | how would you | how should we | how would i | points per "
        "second | quotas | gateway | time series | globally distributed | network partition | "
        "partition | partitions | sharded | region | regions | region loss | crdt | crdts | "
        "replica | replicas | quorum | leader | split brain | million users | deduplication | "
        "dedupe | sent twice | processed twice | at least once | idempotency key | plugin "
        "system | plugin architecture | versioning | api surface | extensibility | roll out | "
        "rollout | schema changes | audit log | multi tenant | tenant | tenants | high load | "
        "under load | permissions model | role based access | ci cd | pipeline | monorepo | "
        "canary | canary releases | blue green | deployment strategy | affected services | "
        "services | ledger | distributed ledger | byzantine | central authority | offline "
        "first | syncs | conflict resolution | resolves conflicts | real time | in real time "
        "| million people | design the backend | design a backend | backend for | design the "
        "architecture | matching | worker pool | rate limits"
    ),
    "security": (
        "security | secure | securely | vulnerability | vulnerabilities | vulnerable | "
        "exploit | exploits | threat model | threat modeling | attack | attacker | attacks | "
        "xss | csrf | sql injection | injection | authentication | authorization | oauth | "
        "jwt | jwts | session hijacking | encryption | encrypt | cryptography | cryptographic "
        "| md5 | sha1 | bcrypt | tls | ssl | certificate | pentest | penetration test | cve | "
        "privilege escalation | sandbox | api keys | api key | password | passwords | "
        "credentials | phishing | malware | ransomware | zero day | side channel | httponly | "
        "cors | login flow | security flaws | sandboxing | untrusted | open redirect | "
        "redirect | abuse | permissions | rbac | access control | audit log | hashing | hash "
        "| salt | salting | argon2 | scrypt | pbkdf2 | credit card | credit card numbers | "
        "plain text | plaintext | pci | gdpr | hipaa | compliance | compliant | breach | "
        "remediation | encryption at rest | double spending | audit | audit this | risks | "
        "injection risks | security audit | sanitize | sanitise | escaping"
    ),
    "concurrency": (
        "concurrency | concurrent | concurrently | race condition | race conditions | data "
        "race | deadlock | deadlocks | livelock | mutex | mutexes | semaphore | lock free | "
        "wait free | atomic | atomics | memory ordering | memory model | thread safe | thread "
        "safety | multithreading | multithreaded | thread pool | parallelism | double checked "
        "locking | locking | synchronization | synchronized | lost update | lost updates | "
        "for update | serializable | isolation level | mvcc | optimistic locking | "
        "pessimistic locking | at the same time | simultaneously | goroutines | asyncio | "
        "threads | two threads | shared counter | shared state | shared memory | thread | "
        "increment | final value is wrong | lock | locks"
    ),
    "analysis": (
        "analyze | analyse | analysis | analyzing | analysing | compare | comparison | "
        "contrast | evaluate | evaluation | assess | assessment | critique | critically | "
        "pros and cons | implications | for and against | argue | arguments | essay | discuss "
        "| differences between | difference between | interpret | interpretation | examine | "
        "investigate | root cause | themes | weakest assumptions | trends | versus | vs"
    ),
    "summary": (
        "summarize | summarise | summary | summaries | summarizing | tl dr | tldr | sum up | "
        "key points | main points | condense | recap | gist | executive summary | action "
        "items | bullet points | key takeaways | key contributions | what did they agree"
    ),
    "creative_short": (
        "haiku | limerick | joke | jokes | pun | puns | slogan | tagline | couplet | riddle | "
        "tweet | motto | caption | knock knock"
    ),
    "creative": (
        "poem | poems | poetry | sonnet | lyrics | song | story | stories | short story | "
        "tale | fable | fairy tale | bedtime story | screenplay | monologue | fiction | "
        "fanfic | fan fiction | novel | chapter | toast | verse | verses | rhyme | rhyming | "
        "ballad | ode | villanelle | sestina | scene | creative | narrative | plot | tragedy "
        "| comedy | drama | play | character arcs | love letter"
    ),
    "creative_long": (
        "novel | novella | chapter | first chapter | screenplay | teleplay | stage play | "
        "epic | saga | trilogy | worldbuilding | world building | iambic pentameter | "
        "petrarchan | villanelle | sestina | volta | unreliable narrator | twist ending | "
        "subtext | foreshadowing | point of view characters | pov characters | multiple "
        "perspectives | character arcs | five act | three act | acts | eight characters"
    ),
    "write_verb": (
        "write | compose | tell | tell me | give me | make up | create | draft | pen | craft "
        "| invent | generate | come up with | i need"
    ),
    "code_noun": (
        "function | functions | script | program | class | method | query | regex | snippet | "
        "api | endpoint | test | tests | module | library | cli | bot | scraper | parser | "
        "compiler | interpreter | app | component | hook | plugin | extension | dockerfile | "
        "makefile | workflow | migration script"
    ),
    "area_strong": (
        "software architecture | system architecture | architect | architecting | system "
        "design | distributed system | distributed systems | microservices | threat model | "
        "threat modeling | race condition | race conditions | deadlock | deadlocks | data "
        "race | lock free | vulnerability | vulnerabilities | exploit | sql injection | xss | "
        "csrf | privilege escalation | sharding | consensus | concurrency | thread safety | "
        "network partition | open redirect"
    ),
    "translate": ("translate | translation | translated | into english | into german"),
    "howto": (
        "how do i | how can i | how should i | how to | best way to | best practices | tips "
        "for | advice on | what should i do | how do we | how can we | what are my options"
    ),
    "topic_change": (
        "anyway | by the way | btw | unrelated | different question | new question | off "
        "topic | changing the subject | random question"
    ),
}
