"""Keyword sets for scripts written without spaces between words (Chinese, Japanese, Korean, Hindi).

These phrases are matched as *substrings*, since there is no word boundary to anchor on; each is
chosen to be specific enough that a substring hit means what it says (``证明`` "prove",
``代码`` "code"), and single characters are avoided except where they are unambiguous in a
request (``诗`` "poem", ``写`` "write"). Korean has spaces, but its particles attach to words, so
it is matched the same way; Hindi is here because its vowel signs are not word characters for
``re``. The scan only runs when the text contains a character of these scripts.
"""

from __future__ import annotations

from typing import Final

ZH: Final[dict[str, str]] = {
    "greet": ("你好 | 您好 | 嗨 | 早上好 | 晚上好 | 下午好 | 哈喽 | 大家好 | 早安"),
    "thanks": ("谢谢 | 多谢 | 感谢 | 谢啦 | 谢了"),
    "smalltalk": (
        "你好吗 | 最近怎么样 | 再见 | 拜拜 | 好的 | 没问题 | 哈哈 | 晚安 | 不客气 | 你是谁"
    ),
    "filler": ("啊 | 呀 | 你 | 了 | 呢 | 吧 | 们 | 大家 | 非常 | 您"),
    "urgency": ("紧急 | 加急 | 马上 | 立刻 | 重要 | 急"),
    "brief": ("简单 | 简要 | 简短 | 一句话"),
    "depth": ("详细 | 深入 | 一步一步 | 逐步 | 严格 | 全面 | 透彻"),
    "lookup": ("是什么 | 什么是 | 是谁 | 哪里 | 哪个 | 多少 | 几个 | 什么时候 | 首都 | 在哪"),
    "explain": ("解释 | 为什么 | 原理 | 怎么回事 | 是如何 | 讲解 | 介绍"),
    "code_strong": ("代码 | 编程 | 编程语言 | 报错 | 源代码 | 调试 | 编译"),
    "code_weak": ("函数 | 程序 | 脚本 | 实现 | 算法 | 数组 | 变量 | 接口 | 数据库 | 质数"),
    "code_hard": ("高并发 | 分布式 | 从零"),
    "math": (
        "素数 | 质数 | 整数 | 方程 | 积分 | 导数 | 概率 | 矩阵 | 无穷 | 几何 | 三角形 | "
        "无理数 | 平方根 | 数列 | 级数 | 极限 | 整除 | 正整数 | 奇数 | 偶数"
    ),
    "math_hard": ("数论 | 群论 | 特征值 | 微分方程 | 拓扑 | 猜想"),
    "proof": ("证明 | 求证 | 推导"),
    "design": (
        "设计 | 架构 | 系统设计 | 分布式 | 高并发 | 微服务 | 缓存 | 限流 | 一致性 | 可扩展 | "
        "扩展性 | 容错 | 高可用 | 负载均衡 | 秒杀"
    ),
    "security": ("安全 | 漏洞 | 加密 | 认证 | 攻击"),
    "concurrency": ("并发 | 死锁 | 竞态 | 线程 | 多线程 | 异步"),
    "analysis": ("分析 | 比较 | 对比 | 评估 | 评价 | 优缺点 | 利弊"),
    "summary": ("总结 | 摘要 | 概括 | 归纳 | 概述 | 要点"),
    "creative_short": ("笑话 | 口号 | 对联 | 俳句"),
    "creative": ("诗 | 故事 | 小说 | 歌词 | 童话 | 剧本"),
    "creative_long": ("长篇 | 章节 | 第一章"),
    "write_verb": ("写 | 创作 | 编一个 | 讲一个"),
    "translate": ("翻译"),
    "area_strong": ("架构 | 并发 | 死锁 | 竞态 | 分布式 | 高并发"),
}
JA: Final[dict[str, str]] = {
    "greet": (
        "こんにちは | こんばんは | おはよう | おはようございます | やあ | もしもし | はじめまして"
    ),
    "thanks": ("ありがとう | ありがとうございます | どうも | 感謝"),
    "smalltalk": (
        "お疲れ様 | おつかれ | お元気ですか | 元気 | さようなら | またね | おやすみ | "
        "よろしく | 了解 | なるほど"
    ),
    "filler": ("です | ございます | ね | よ | か | でした | ます | さま | 様"),
    "urgency": ("至急 | 緊急 | 急ぎ | 大至急 | 重要"),
    "brief": ("簡単に | 手短に | 一言で"),
    "depth": ("詳しく | 詳細 | 徹底 | 厳密 | 深く | ステップバイステップ"),
    "lookup": ("何ですか | とは | どこ | 誰 | いつ | いくつ | 何人 | 何歳 | 何年 | 首都 | 一番"),
    "explain": ("説明 | なぜ | どうして | 仕組み | 教えて"),
    "code_strong": ("コード | プログラミング | デバッグ | コンパイル"),
    "code_weak": ("関数 | プログラム | 実装 | スクリプト | 配列 | 変数 | エラー | バグ | リスト"),
    "code_hard": ("分散システム | 非同期"),
    "math": (
        "素数 | 整数 | 方程式 | 積分 | 微分 | 確率 | 行列 | 無限 | 無理数 | 平方根 | 三角形 | "
        "数列 | 極限"
    ),
    "math_hard": ("数論 | 群論 | 固有値 | 微分方程式 | 位相 | 予想"),
    "proof": ("証明 | 導出"),
    "design": (
        "アーキテクチャ | 設計 | 分散システム | 分散 | スケーラブル | スケーラビリティ | "
        "大規模 | 可用性 | 冗長 | 負荷分散 | マイクロサービス | 一貫性"
    ),
    "security": ("セキュリティ | 脆弱性 | 暗号 | 認証 | 攻撃"),
    "concurrency": ("並行 | 並列 | 競合状態 | 競合 | デッドロック | スレッド | 排他 | 非同期"),
    "analysis": ("分析 | 比較 | 評価 | 長所と短所 | メリットとデメリット | 考察"),
    "summary": ("要約 | まとめ | 要点 | 概要"),
    "creative_short": ("俳句 | 川柳 | ジョーク | 冗談 | キャッチコピー"),
    "creative": ("詩 | 物語 | 小説 | 歌詞 | 童話 | 脚本 | ストーリー"),
    "creative_long": ("長編 | 第一章"),
    "write_verb": ("書いて | 作って | 作成 | 書く | 詠んで"),
    "translate": ("翻訳"),
    "area_strong": ("アーキテクチャ | 分散システム | 競合状態 | デッドロック"),
}
KO_HI: Final[dict[str, str]] = {
    "greet": ("안녕 | 안녕하세요 | 반가워요 | 반갑습니다 | नमस्ते | नमस्कार"),
    "thanks": ("감사합니다 | 고마워 | 고맙습니다 | धन्यवाद | शुक्रिया"),
    "smalltalk": ("잘 지내 | 잘가 | 잘 자"),
    "urgency": ("긴급 | 급해"),
    "brief": ("간단히"),
    "depth": ("자세히"),
    "lookup": ("어디 | 무엇 | 누구 | 언제 | 몇 | 수도"),
    "explain": ("설명 | 왜"),
    "code_strong": ("코드 | 파이썬 | 퀵소트 | 프로그래밍"),
    "code_weak": ("함수 | 프로그램 | 구현 | 정렬 | 알고리즘"),
    "math": ("정수 | 방정식 | 적분 | 미분 | 확률 | 무한"),
    "proof": ("증명"),
    "design": ("아키텍처 | 설계 | 분산 | 확장성 | 마이크로서비스"),
    "security": ("보안 | 취약점 | 인증"),
    "concurrency": ("동시성 | 교착 | 스레드 | 경쟁 상태"),
    "analysis": ("분석 | 비교 | 평가 | 장단점"),
    "summary": ("요약 | 정리"),
    "creative_short": ("농담 | 하이쿠"),
    "creative": ("이야기 | 소설 | 가사 | 동화"),
    "write_verb": ("써 줘 | 써줘 | 작성"),
    "area_strong": ("아키텍처 | 동시성 | 교착"),
}
