-- Schema of data/empresa.db. Money is integer centavos; dates are 'YYYY-MM-DD' text.
-- Indexes are created by popular_banco.py after the data is loaded (see INDEXES below).
PRAGMA foreign_keys = ON;

CREATE TABLE departamentos (
    id           INTEGER PRIMARY KEY,
    nome         TEXT    NOT NULL UNIQUE,
    centro_custo TEXT    NOT NULL
);

CREATE TABLE funcionarios (
    id               INTEGER PRIMARY KEY,
    nome             TEXT    NOT NULL,
    email            TEXT    NOT NULL,
    cargo            TEXT    NOT NULL,
    departamento_id  INTEGER NOT NULL REFERENCES departamentos(id),
    data_admissao    TEXT    NOT NULL,
    salario_centavos INTEGER NOT NULL CHECK (salario_centavos > 0)
);

CREATE TABLE transacoes (
    id             INTEGER PRIMARY KEY,
    funcionario_id INTEGER NOT NULL REFERENCES funcionarios(id),
    data           TEXT    NOT NULL,
    valor_centavos INTEGER NOT NULL CHECK (valor_centavos > 0),
    categoria      TEXT    NOT NULL,
    descricao      TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('PAGO', 'PENDENTE', 'CANCELADO'))
);

-- INDEXES (run after the bulk load; each serves a report of catalog/)
-- Transaction ids grow with the date, so entries of one key are already in date order.
-- Each index over millions of rows costs seconds to build: only those the reports use.
-- GASTOS_POR_DEPARTAMENTO: department -> employees -> their transactions.
CREATE INDEX idx_funcionarios_departamento ON funcionarios(departamento_id);
CREATE INDEX idx_transacoes_funcionario ON transacoes(funcionario_id);
-- PAGAMENTOS_PENDENTES (WHERE status = 'PENDENTE' ORDER BY data): a fifth of the rows.
CREATE INDEX idx_transacoes_pendentes ON transacoes(data) WHERE status = 'PENDENTE';
-- TRANSACOES_POR_PERIODO, MAIORES_GASTADORES, RESUMO_MENSAL: a range of dates.
CREATE INDEX idx_transacoes_data ON transacoes(data);
