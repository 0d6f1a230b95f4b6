"""Value pools built with Faker (pt_BR): departments, employees and expense descriptions.

Faker is far too slow to call once per transaction (millions of rows), so it is called only
here, a few thousand times; the bulk load then draws from these pools inside SQLite.
Everything is driven by one seeded `random.Random` plus a Faker seeded with the same seed,
so the same seed gives the same pools.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

# Transactions cover four full calendar years, so yearly reports (e.g. RESUMO_MENSAL for 2025)
# find twelve months of data. Fixed dates, never "today": same seed -> same database.
PERIOD_START = date(2022, 1, 1)
PERIOD_END = date(2025, 12, 31)
# Most of the staff was hired before the period; the company keeps hiring during it.
FIRST_HIRE = date(2008, 1, 1)
LAST_HIRE = date(2025, 10, 31)
HIRED_DURING_PERIOD = 0.30

EMAIL_DOMAIN = "empresa.com.br"

# (name, relative headcount). "Engenharia de Software" is the example of the specification.
DEPARTMENTS: tuple[tuple[str, int], ...] = (
    ("Engenharia de Software", 18),
    ("Infraestrutura de TI", 6),
    ("Dados e Analytics", 5),
    ("Segurança da Informação", 3),
    ("Produto", 5),
    ("Comercial", 12),
    ("Marketing", 6),
    ("Atendimento ao Cliente", 10),
    ("Operações", 9),
    ("Logística", 7),
    ("Compras", 3),
    ("Financeiro", 5),
    ("Controladoria", 3),
    ("Jurídico", 2),
    ("Recursos Humanos", 4),
    ("Administrativo", 4),
)


@dataclass(frozen=True)
class Employee:
    id: int
    nome: str
    email: str
    cargo: str
    departamento_id: int
    data_admissao: str
    salario_centavos: int


@dataclass(frozen=True)
class Expense:
    """One pool entry: a concrete description, its category and its range of values."""

    categoria: str
    descricao: str
    valor_min_centavos: int
    valor_max_centavos: int


# Real cities (Faker's pt_BR cities are invented names such as "da Mata de Silveira").
CITIES = (
    ("São Paulo", "SP"), ("Rio de Janeiro", "RJ"), ("Belo Horizonte", "MG"), ("Brasília", "DF"),
    ("Curitiba", "PR"), ("Porto Alegre", "RS"), ("Recife", "PE"), ("Salvador", "BA"),
    ("Fortaleza", "CE"), ("Florianópolis", "SC"), ("Goiânia", "GO"), ("Manaus", "AM"),
    ("Belém", "PA"), ("Vitória", "ES"), ("Campinas", "SP"), ("Natal", "RN"),
    ("João Pessoa", "PB"), ("Maceió", "AL"), ("Cuiabá", "MT"), ("Campo Grande", "MS"),
    ("Ribeirão Preto", "SP"), ("Joinville", "SC"), ("Uberlândia", "MG"), ("São Luís", "MA"),
)  # fmt: skip
SOFTWARE = (
    "Microsoft 365", "Slack", "JetBrains IntelliJ IDEA", "GitHub Enterprise", "Figma",
    "Jira Software", "Zoom", "Adobe Acrobat Pro", "AutoCAD", "Power BI", "Datadog", "Notion",
    "Google Workspace", "Miro", "TOTVS Protheus", "Conta Azul",
)  # fmt: skip
BRANDS = ("Dell", "Lenovo", "Apple", "Samsung", "Positivo", "Acer", "LG", "Logitech", "Multilaser")
COURSES = (
    "Liderança ágil", "Python para análise de dados", "Negociação e vendas", "LGPD na prática",
    "Excel avançado", "Comunicação não violenta", "Kubernetes essencial", "Gestão de projetos",
    "Atendimento de excelência", "Contabilidade para não contadores", "Segurança em nuvem",
)  # fmt: skip
EVENTS = ("Python Brasil", "TDC", "Febraban Tech", "RD Summit", "QCon São Paulo", "Campus Party")
CERTIFICATIONS = ("AWS Solutions Architect", "PMP", "Scrum Master", "ITIL 4", "CPA-20", "CISSP")
MONTHS = (
    "janeiro", "fevereiro", "março", "abril", "maio", "junho",
    "julho", "agosto", "setembro", "outubro", "novembro", "dezembro",
)  # fmt: skip

# category -> (share of transactions, min and max value in centavos, description templates).
# Templates deliberately carry commas, double quotes, accents and dashes: the CSV export must
# quote them, and the reports show them as they are.
CATEGORIES: dict[str, tuple[int, int, int, tuple[str, ...]]] = {
    "Alimentação": (24, 1_800, 65_000, (
        'Almoço com cliente "{empresa}", {cidade}',
        "Jantar da equipe — {cidade}/{uf}",
        "Café da manhã, reunião com {pessoa}",
        "Lanche no aeroporto de {cidade}",
        "Refeição em viagem: {cidade}, {bairro}",
    )),
    "Transporte": (20, 1_200, 38_000, (
        "Táxi: {bairro} → aeroporto",
        "Corrida de aplicativo, {bairro} até o escritório",
        'Combustível, pedágio e estacionamento — visita à "{empresa}"',
        "Estacionamento no centro de {cidade}",
    )),
    "Viagem": (9, 15_000, 450_000, (
        "Passagem aérea {cidade} → {cidade2}, ida e volta",
        "Passagem rodoviária {cidade} \u2013 {cidade2}",  # en dash
        'Remarcação de voo para {cidade2}, taxa da companhia ("no-show")',
    )),
    "Hospedagem": (8, 18_000, 320_000, (
        "Hotel em {cidade}, {n} diárias",
        'Pousada "{sobrenome}", {n} diárias — congresso em {cidade}',
    )),
    "Material de escritório": (12, 800, 90_000, (
        "Papel A4, canetas, grampos e post-its",
        "Cartuchos de impressora, pastas e envelopes — filial {bairro}",
        'Caderno, agenda e "kit boas-vindas" para {pessoa}',
    )),
    "Software": (8, 4_900, 2_500_000, (
        'Licença anual "{software}", {n} usuários',
        'Assinatura mensal {software} (plano "Business")',
        "Renovação de suporte: {software}, contrato nº {numero}",
    )),
    "Hardware": (5, 12_000, 1_800_000, (
        "Notebook {marca}, 16 GB, SSD 512 GB",
        'Monitor 27", suporte articulado e cabo HDMI',
        "Teclado, mouse e headset para {pessoa}",
        "Celular corporativo {marca} — reposição",
    )),
    "Treinamento": (6, 25_000, 900_000, (
        'Curso "{curso}" — {empresa}',
        "Inscrição na conferência {evento}, {cidade}",
        "Certificação {certificacao}: taxa de exame",
    )),
    "Telefonia e internet": (5, 6_000, 60_000, (
        "Plano de celular corporativo, linha de {pessoa}",
        "Internet do escritório de {cidade}, mês de {mes}",
    )),
    "Eventos": (3, 30_000, 1_200_000, (
        'Confraternização de fim de ano, buffet "{empresa}"',
        'Coffee break do workshop "{curso}", {cidade}',
    )),
}  # fmt: skip

# A small share of descriptions span two lines, so CSV quoting of newlines is exercised too.
MULTILINE_SHARE = 0.01


def new_faker(seed: int) -> Faker:
    fake = Faker("pt_BR")
    fake.seed_instance(seed)
    return fake


def departments() -> list[tuple[int, str, str]]:
    """(id, nome, centro_custo) rows."""
    return [(i, name, f"CC-{1000 + 10 * i}") for i, (name, _) in enumerate(DEPARTMENTS, 1)]


def employees(count: int, rng: random.Random, fake: Faker) -> list[Employee]:
    """`count` employees with ids in order of hire date (the first hired on/before the period)."""
    hired = sorted(_hire_date(rng) for _ in range(count))
    # At least one employee exists when the period starts, so every day has someone to spend.
    hired[0] = min(hired[0], PERIOD_START)
    weights = [w for _, w in DEPARTMENTS]
    dept_ids = rng.choices(range(1, len(DEPARTMENTS) + 1), weights=weights, k=count)
    emails: set[str] = set()
    result = []
    for i, (hire, dept) in enumerate(zip(hired, dept_ids, strict=True), 1):
        first, last = fake.first_name(), fake.last_name()
        middle = f" {fake.last_name()}" if rng.random() < 0.5 else ""
        result.append(
            Employee(
                id=i,
                nome=f"{first}{middle} {last}",
                email=_unique_email(first, last, emails),
                cargo=fake.job(),
                departamento_id=dept,
                data_admissao=hire.isoformat(),
                salario_centavos=_salary(rng),
            )
        )
    return result


def expenses(size: int, rng: random.Random, fake: Faker) -> list[Expense]:
    """`size` concrete descriptions, categories represented in proportion to their share."""
    total_share = sum(share for share, *_ in CATEGORIES.values())
    pool: list[Expense] = []
    for categoria, (share, low, high, templates) in CATEGORIES.items():
        for _ in range(max(1, round(size * share / total_share))):
            text = rng.choice(templates).format_map(_Fillers(rng, fake))
            if rng.random() < MULTILINE_SHARE:
                text += f"\nObs.: nota fiscal nº {rng.randint(1000, 999_999)}, {fake.company()}"
            pool.append(Expense(categoria, text, low, high))
    # Interleave categories so any slice of the pool looks like a mix.
    rng.shuffle(pool)
    return pool


class _Fillers(dict[str, object]):
    """Template values made on first use: Faker runs only for the fields a template names."""

    def __init__(self, rng: random.Random, fake: Faker) -> None:
        super().__init__()
        self._rng, self._fake = rng, fake

    def __missing__(self, key: str) -> object:
        rng, fake = self._rng, self._fake
        if key in ("cidade", "uf", "cidade2"):
            (cidade, uf), (cidade2, _) = rng.sample(CITIES, 2)
            self.update(cidade=cidade, uf=uf, cidade2=cidade2)
            return self[key]
        makers: dict[str, Callable[[], object]] = {
            "empresa": fake.company,
            "pessoa": lambda: f"{fake.first_name()} {fake.last_name()}",
            "sobrenome": fake.last_name,
            "bairro": fake.bairro,
            "n": lambda: rng.randint(2, 30),
            "numero": lambda: f"{rng.randint(1, 9999):04d}/{rng.randint(2021, 2025)}",
            "software": lambda: rng.choice(SOFTWARE),
            "marca": lambda: rng.choice(BRANDS),
            "curso": lambda: rng.choice(COURSES),
            "evento": lambda: rng.choice(EVENTS),
            "certificacao": lambda: rng.choice(CERTIFICATIONS),
            "mes": lambda: rng.choice(MONTHS),
        }
        value = makers[key]()
        self[key] = value
        return value


def _salary(rng: random.Random) -> int:
    """Log-uniform between R$ 1.800 and R$ 38.000 (many modest salaries, few high ones)."""
    reais = math.exp(rng.uniform(math.log(1_800), math.log(38_000)))
    return 100 * round(reais)


def _hire_date(rng: random.Random) -> date:
    if rng.random() < HIRED_DURING_PERIOD:
        low, high = PERIOD_START, LAST_HIRE
    else:
        low, high = FIRST_HIRE, PERIOD_START - timedelta(days=1)
    return low + timedelta(days=rng.randrange((high - low).days + 1))


def _unique_email(first: str, last: str, taken: set[str]) -> str:
    base = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
    local, n = base, 1
    while local in taken:
        n += 1
        local = f"{base}{n}"
    taken.add(local)
    return f"{local}@{EMAIL_DOMAIN}"


def _ascii_slug(text: str) -> str:
    """'Conceição' -> 'conceicao': e-mail local parts stay ASCII."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum()) or "x"
