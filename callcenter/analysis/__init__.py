"""The monthly analysis (SA-DA-006 售后数据统计分析表): figures computed from the records only.

``metrics`` holds the pure rules (ratios, periods, problem classes); ``monthly`` the SQL
aggregates over one month; ``charts`` the server-side SVG; ``export`` CSV and XLSX; ``http``
the page and the API. Every definition is written out in ``docs/metrics.md``.
"""
