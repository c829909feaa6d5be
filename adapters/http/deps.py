"""Dependencies shared by the routers: the services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.auth import Principal
from adapters.http.services import Services

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="令牌文件中登记的令牌 (Authorization: Bearer <token>); 令牌绑定办理人 (id, role, unit)",
)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def authenticate(
    request: Request, services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller behind the bearer token; 401 without a known token."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "缺少令牌; 请在 Authorization: Bearer 中提供令牌",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = services.tokens.lookup(credentials.credentials)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "令牌无效; 请使用令牌文件中登记的令牌",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal  # for the request log: who asked (never the token)
    return principal


CallerDep = Annotated[Principal, Depends(authenticate)]
