-- Schema of the PostgreSQL database `popular_banco.py --url` loads: the tables of schema.sql with
-- PostgreSQL's own types (real dates; money still integer centavos). Statements are separated by
-- blank lines; the tables are created first, empty, and the constraints and indexes after the
-- bulk load (COPY), which is faster than maintaining them row by row.

-- TABLES
CREATE TABLE departamentos (
    id           integer NOT NULL,
    nome         text    NOT NULL,
    centro_custo text    NOT NULL
);

CREATE TABLE funcionarios (
    id               integer NOT NULL,
    nome             text    NOT NULL,
    email            text    NOT NULL,
    cargo            text    NOT NULL,
    departamento_id  integer NOT NULL,
    data_admissao    date    NOT NULL,
    salario_centavos bigint  NOT NULL CHECK (salario_centavos > 0)
);

CREATE TABLE transacoes (
    id             bigint  NOT NULL,
    funcionario_id integer NOT NULL,
    data           date    NOT NULL,
    valor_centavos bigint  NOT NULL CHECK (valor_centavos > 0),
    categoria      text    NOT NULL,
    descricao      text    NOT NULL,
    status         text    NOT NULL CHECK (status IN ('PAGO', 'PENDENTE', 'CANCELADO'))
);

-- INDEXES (after the load; the same ones as schema.sql, each serving a report of catalog/)
ALTER TABLE departamentos ADD PRIMARY KEY (id), ADD UNIQUE (nome);

ALTER TABLE funcionarios ADD PRIMARY KEY (id);

ALTER TABLE transacoes ADD PRIMARY KEY (id);

CREATE INDEX idx_funcionarios_departamento ON funcionarios (departamento_id);

CREATE INDEX idx_transacoes_funcionario ON transacoes (funcionario_id);

CREATE INDEX idx_transacoes_pendentes ON transacoes (data) WHERE status = 'PENDENTE';

CREATE INDEX idx_transacoes_data ON transacoes (data);

-- References are valid by construction (the generator draws employees among those hired, and
-- tests/test_dbgen.py checks it): declared, not re-checked over millions of rows.
ALTER TABLE funcionarios ADD FOREIGN KEY (departamento_id) REFERENCES departamentos (id) NOT VALID;

ALTER TABLE transacoes ADD FOREIGN KEY (funcionario_id) REFERENCES funcionarios (id) NOT VALID;
