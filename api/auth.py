"""Bearer tokens and roles: display < operator < engineer < admin; each role has every power of those before."""
from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.model import Role, User

_bearer = HTTPBearer(auto_error=False, description="a token from the plant configuration's users")


def find_user(users: list[User], token: str | None) -> User | None:
    if not token:
        return None
    found = None
    for u in users:  # compare with every user in constant time: no early exit that leaks which prefix matched
        if hmac.compare_digest(u.token.encode(), token.encode()):
            found = u
    return found


def current_user(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> User:
    user = find_user(request.app.state.users, cred.credentials if cred else None)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or unknown token",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def require(role: Role):
    def check(user: User = Depends(current_user)) -> User:
        if user.role.rank < role.rank:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {role.value} or above; you are {user.role.value}")
        return user
    return check
