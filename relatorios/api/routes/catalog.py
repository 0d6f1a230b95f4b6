"""`GET /tipos-relatorio`: the report catalog, read once at start-up."""

from __future__ import annotations

from fastapi import APIRouter

from relatorios.api.deps import CatalogDep, KeyDep
from relatorios.api.responses import ReportInfo

router = APIRouter()


@router.get("/tipos-relatorio", response_model=list[ReportInfo], summary="Catálogo")
async def tipos_relatorio(catalog: CatalogDep, _key: KeyDep) -> list[ReportInfo]:
    return catalog
